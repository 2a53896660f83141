//! The controller driven the way guests drive it: SeaBIOS's start-up
//! (`src/hw/ps2port.c`), Linux's probe (`drivers/input/serio/i8042.c`, then
//! atkbd and psmouse), host keys and mouse movement arriving as the guest
//! reads them, and the output port's reset and A20 lines.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::*;
use crate::testing::assert_refuses_foreign_states;

/// An interrupt line that counts its rising edges.
#[derive(Debug, Default)]
struct EdgeIrq {
    level: AtomicBool,
    rises: AtomicU32,
}

impl EdgeIrq {
    fn level(&self) -> bool {
        self.level.load(Ordering::SeqCst)
    }

    fn rises(&self) -> u32 {
        self.rises.load(Ordering::SeqCst)
    }
}

impl IrqLine for EdgeIrq {
    fn set_level(&self, high: bool) {
        if self.level.swap(high, Ordering::SeqCst) != high && high {
            self.rises.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The controller, its two ports, its lines, the A20 gate and the run
/// control.
struct Pc {
    kbc: I8042,
    data: I8042Ports,
    command: I8042Ports,
    irq1: Arc<EdgeIrq>,
    irq12: Arc<EdgeIrq>,
    a20: A20Gate,
    control: Arc<RunControl>,
}

/// No bytes.
const NOTHING: [u8; 0] = [];

/// Keys by Linux key code.
const KEY_A: u16 = 30;
const KEY_UP: u16 = 103;

impl Pc {
    fn new() -> Pc {
        let irq1 = Arc::new(EdgeIrq::default());
        let irq12 = Arc::new(EdgeIrq::default());
        let a20 = A20Gate::new(true);
        let control = Arc::new(RunControl::new());
        let kbc = I8042::new(
            Box::new(irq1.clone()),
            Box::new(irq12.clone()),
            a20.clone(),
            control.clone(),
        );
        Pc {
            data: kbc.data_port(),
            command: kbc.command_port(),
            kbc,
            irq1,
            irq12,
            a20,
            control,
        }
    }

    fn outb(&mut self, port: u16, value: u8) {
        match port {
            DATA_PORT => self.data.write(0, 1, u32::from(value)),
            COMMAND_PORT => self.command.write(0, 1, u32::from(value)),
            _ => panic!("port {port:#x} is not the i8042's"),
        }
    }

    fn inb(&mut self, port: u16) -> u8 {
        match port {
            DATA_PORT => self.data.read(0, 1) as u8,
            COMMAND_PORT => self.command.read(0, 1) as u8,
            _ => panic!("port {port:#x} is not the i8042's"),
        }
    }

    fn status(&mut self) -> u8 {
        self.inb(COMMAND_PORT)
    }

    /// Reads what the controller has, as a driver's polling loop does:
    /// each byte with whether status bit 5 marked it as the mouse's.
    fn drain_tagged(&mut self) -> Vec<(u8, bool)> {
        let mut bytes = Vec::new();
        for _ in 0..256 {
            let status = self.status();
            if status & STATUS_OBF == 0 {
                return bytes;
            }
            bytes.push((self.inb(DATA_PORT), status & STATUS_AUX_OBF != 0));
        }
        panic!("the output buffer never empties: {bytes:x?}");
    }

    /// Keyboard-side bytes only (none may be the mouse's).
    fn drain(&mut self) -> Vec<u8> {
        let tagged = self.drain_tagged();
        assert!(
            tagged.iter().all(|&(_, aux)| !aux),
            "mouse bytes where keyboard bytes were due: {tagged:x?}"
        );
        tagged.into_iter().map(|(b, _)| b).collect()
    }

    /// Mouse-side bytes only.
    fn drain_aux(&mut self) -> Vec<u8> {
        let tagged = self.drain_tagged();
        assert!(
            tagged.iter().all(|&(_, aux)| aux),
            "keyboard bytes where mouse bytes were due: {tagged:x?}"
        );
        tagged.into_iter().map(|(b, _)| b).collect()
    }

    /// A controller command and its answer (none for commands without one).
    fn ctl(&mut self, command: u8) -> Vec<u8> {
        self.outb(COMMAND_PORT, command);
        self.drain()
    }

    /// A controller command with a data byte.
    fn ctl_with(&mut self, command: u8, value: u8) -> Vec<u8> {
        self.outb(COMMAND_PORT, command);
        self.outb(DATA_PORT, value);
        self.drain_tagged().into_iter().map(|(b, _)| b).collect()
    }

    fn read_ctr(&mut self) -> u8 {
        let answer = self.ctl(0x20);
        assert_eq!(answer.len(), 1, "{answer:x?}");
        answer[0]
    }

    /// Writes the command byte, reading nothing back.
    fn write_ctr(&mut self, value: u8) {
        self.outb(COMMAND_PORT, 0x60);
        self.outb(DATA_PORT, value);
    }

    /// Bytes to the keyboard, and what comes back.
    fn kbd(&mut self, bytes: &[u8]) -> Vec<u8> {
        for &b in bytes {
            self.outb(DATA_PORT, b);
        }
        self.drain()
    }

    /// Bytes to the mouse, each behind 0xD4, and what comes back.
    fn aux(&mut self, bytes: &[u8]) -> Vec<u8> {
        for &b in bytes {
            self.outb(COMMAND_PORT, 0xd4);
            self.outb(DATA_PORT, b);
        }
        self.drain_aux()
    }

    /// SeaBIOS's `ps2_command` around one keyboard command: interrupts off
    /// and both ports disabled, a flush, the keyboard port enabled, the
    /// bytes, then the saved command byte back.
    fn seabios_kbd_command(&mut self, ctr: u8, bytes: &[u8]) -> Vec<u8> {
        let quiet = (ctr | CB_KBD_DISABLED | CB_AUX_DISABLED) & !(CB_KBD_INT | CB_AUX_INT);
        self.write_ctr(quiet);
        assert_eq!(self.drain(), NOTHING);
        self.write_ctr(quiet & !CB_KBD_DISABLED);
        let answer = self.kbd(bytes);
        self.write_ctr(ctr);
        answer
    }

    /// SeaBIOS's `ps2_keyboard_setup`, checking each answer; leaves the
    /// command byte at 0x61 (mouse off, translation, keyboard interrupts).
    fn seabios_init(&mut self) {
        assert_eq!(self.drain(), NOTHING, "nothing to flush after power-on");
        assert_eq!(self.ctl(0xaa), [0x55]);
        assert_eq!(self.ctl(0xab), [0x00]);
        let ctr = CB_KBD_DISABLED | CB_AUX_DISABLED;
        assert_eq!(self.seabios_kbd_command(ctr, &[0xff]), [0xfa, 0xaa]);
        assert_eq!(self.seabios_kbd_command(ctr, &[0xf5]), [0xfa]);
        assert_eq!(self.seabios_kbd_command(ctr, &[0xf0, 0x02]), [0xfa, 0xfa]);
        let ctr = CB_AUX_DISABLED | CB_TRANSLATE | CB_KBD_INT;
        assert_eq!(self.seabios_kbd_command(ctr, &[0xf4]), [0xfa]);
        assert_eq!(self.read_ctr(), 0x61);
    }

    /// Presses and releases `key`, returning what the guest reads.
    fn tap(&mut self, key: u16) -> Vec<u8> {
        self.kbc.key(key, true);
        let mut bytes = self.drain();
        self.kbc.key(key, false);
        bytes.extend(self.drain());
        bytes
    }
}

#[test]
fn seabios_start_up_then_a_key_arrives_in_set_1_on_irq_1() {
    let mut pc = Pc::new();
    assert_eq!(
        pc.status() & STATUS_SYSTEM,
        0,
        "system flag clear at power-on"
    );
    pc.seabios_init();
    assert_ne!(pc.status() & STATUS_SYSTEM, 0, "the self test sets it");
    // The self tests answer under the power-on command byte, which enables
    // IRQ 1, and so does the last read of the command byte; the keyboard's
    // answers came with interrupts off.
    assert_eq!(pc.irq1.rises(), 3);

    pc.kbc.key(KEY_A, true);
    assert_eq!(pc.status() & (STATUS_OBF | STATUS_AUX_OBF), STATUS_OBF);
    assert!(pc.irq1.level());
    assert_eq!(pc.irq1.rises(), 4);
    assert_eq!(pc.inb(DATA_PORT), 0x1e, "set 2's 1C translated");
    assert!(!pc.irq1.level(), "reading the byte drops IRQ 1");
    pc.kbc.key(KEY_A, false);
    assert_eq!(pc.irq1.rises(), 5);
    assert_eq!(pc.inb(DATA_PORT), 0x9e, "F0 1C folded into a set 1 break");
    assert_eq!(pc.status() & STATUS_OBF, 0);
    assert_eq!(
        pc.inb(DATA_PORT),
        0x9e,
        "an empty buffer reads its last byte"
    );
    assert_eq!(pc.irq12.rises(), 0);
}

#[test]
fn linux_probe_checks_the_aux_port_then_talks_to_keyboard_and_mouse() {
    let mut pc = Pc::new();
    pc.seabios_init();
    // i8042_controller_check and i8042_controller_selftest.
    assert_eq!(pc.drain(), NOTHING);
    assert_eq!(pc.ctl(0xaa), [0x55]);
    // i8042_controller_init: a stable command byte, keyboard off, written back.
    let ctr = pc.read_ctr();
    assert_eq!(pc.read_ctr(), ctr);
    let ctr = (ctr | CB_KBD_DISABLED) & !CB_KBD_INT;
    pc.write_ctr(ctr);
    assert_eq!(pc.read_ctr(), ctr);

    // i8042_check_aux: the loopback answers from the mouse's side.
    pc.outb(COMMAND_PORT, 0xd3);
    pc.outb(DATA_PORT, 0x5a);
    assert_eq!(pc.status() & (STATUS_OBF | STATUS_AUX_OBF), 0x21);
    assert_eq!(pc.inb(DATA_PORT), 0x5a);
    assert_eq!(pc.ctl(0xa9), [0x00]);
    // The bit assignment test.
    pc.ctl(0xa7);
    assert_ne!(pc.read_ctr() & CB_AUX_DISABLED, 0);
    pc.ctl(0xa8);
    assert_eq!(pc.read_ctr() & CB_AUX_DISABLED, 0);
    // The AUX IRQ test: port enabled with interrupts, a loopback byte on IRQ 12.
    let ctr = (pc.read_ctr() & !CB_AUX_DISABLED) | CB_AUX_INT;
    pc.write_ctr(ctr);
    pc.outb(COMMAND_PORT, 0xd3);
    pc.outb(DATA_PORT, 0xa5);
    assert!(pc.irq12.level());
    assert_eq!(pc.irq12.rises(), 1);
    assert_eq!(pc.drain_aux(), [0xa5]);
    assert!(!pc.irq12.level());
    // Active multiplexing probe: a plain loopback returns what was sent,
    // which tells Linux there is no multiplexer.
    for b in [0xf0, 0x56, 0xa4] {
        pc.outb(COMMAND_PORT, 0xd3);
        pc.outb(DATA_PORT, b);
        assert_eq!(pc.drain_aux(), [b]);
    }

    // Both ports on with interrupts, as i8042_enable_kbd_port and
    // i8042_enable_aux_port leave them.
    let ctr = (pc.read_ctr() & !(CB_KBD_DISABLED | CB_AUX_DISABLED)) | CB_KBD_INT | CB_AUX_INT;
    pc.write_ctr(ctr);
    assert_eq!(ctr & CB_TRANSLATE, CB_TRANSLATE);
    // atkbd: the identity through translation (AB 83 becomes AB 41), then
    // LEDs, typematic rate and scanning.
    let rises = pc.irq1.rises();
    assert_eq!(pc.kbd(&[0xf2]), [0xfa, 0xab, 0x41]);
    assert_eq!(pc.irq1.rises(), rises + 3, "one edge per byte");
    assert_eq!(pc.kbd(&[0xed, 0x00]), [0xfa, 0xfa]);
    assert_eq!(pc.kbd(&[0xf3, 0x00]), [0xfa, 0xfa]);
    assert_eq!(pc.kbd(&[0xf4]), [0xfa]);
    assert_eq!(pc.kbc.state().keyboard.typematic, 0);

    // psmouse: reset, identity, the IntelliMouse knock, then streaming.
    assert_eq!(pc.aux(&[0xff]), [0xfa, 0xaa, 0x00]);
    assert_eq!(pc.aux(&[0xf2]), [0xfa, 0x00]);
    assert_eq!(
        pc.aux(&[0xf3, 200, 0xf3, 100, 0xf3, 80]),
        [0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa]
    );
    assert_eq!(pc.aux(&[0xf2]), [0xfa, 0x03]);
    assert_eq!(pc.aux(&[0xe8, 0x03, 0xe6, 0xf3, 100, 0xf4]), [0xfa; 6]);
    let rises = pc.irq12.rises();
    pc.kbc.mouse_motion(3, -2, 0);
    assert_eq!(pc.drain_aux(), [0x08, 0x03, 0x02, 0x00]);
    assert_eq!(pc.irq12.rises(), rises + 4);
}

#[test]
fn linux_key_codes_1_to_88_are_set_1_codes_after_translation() {
    // Linux numbered these keys by their set 1 make codes, so the set 2
    // table and the 8042's translation can be checked against them.
    for code in (1u16..=83).chain(86..=88) {
        let make = to_set1(&set2_sequence(code, true, 0));
        let brk = to_set1(&set2_sequence(code, false, 0));
        let expected = u8::try_from(code).unwrap();
        assert_eq!(make, [expected], "key {code}");
        assert_eq!(brk, [expected | 0x80], "key {code}");
    }
    // The extended keys' set 1 codes (Microsoft's scan code table).
    for (code, set1) in [
        (96, 0x1c),  // keypad Enter
        (97, 0x1d),  // right Ctrl
        (98, 0x35),  // keypad /
        (100, 0x38), // right Alt
        (102, 0x47), // Home
        (103, 0x48), // Up
        (104, 0x49), // Page Up
        (105, 0x4b), // Left
        (106, 0x4d), // Right
        (107, 0x4f), // End
        (108, 0x50), // Down
        (109, 0x51), // Page Down
        (110, 0x52), // Insert
        (111, 0x53), // Delete
        (125, 0x5b), // left Windows
        (126, 0x5c), // right Windows
        (127, 0x5d), // Menu
    ] {
        assert_eq!(
            to_set1(&set2_sequence(code, true, 0)),
            [0xe0, set1],
            "{code}"
        );
        assert_eq!(
            to_set1(&set2_sequence(code, false, 0)),
            [0xe0, set1 | 0x80],
            "{code}"
        );
    }
    assert_eq!(set2_sequence(0, true, 0), Vec::<u8>::new());
    assert_eq!(set2_sequence(84, true, 0), Vec::<u8>::new());
    assert_eq!(set2_sequence(0x2ff, true, 0), Vec::<u8>::new());
}

#[test]
fn translated_keys_include_extended_pause_and_print_screen() {
    let mut pc = Pc::new();
    pc.seabios_init();
    assert_eq!(pc.tap(KEY_UP), [0xe0, 0x48, 0xe0, 0xc8]);
    assert_eq!(pc.tap(KEY_PAUSE), [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
    assert_eq!(
        pc.tap(KEY_SYSRQ),
        [0xe0, 0x2a, 0xe0, 0x37, 0xe0, 0xb7, 0xe0, 0xaa]
    );
    // Ctrl+Pause is Break; Ctrl+Print Screen drops the fake Shift.
    pc.kbc.key(KEY_LEFTCTRL, true);
    assert_eq!(pc.drain(), [0x1d]);
    assert_eq!(pc.tap(KEY_PAUSE), [0xe0, 0x46, 0xe0, 0xc6]);
    assert_eq!(pc.tap(KEY_SYSRQ), [0xe0, 0x37, 0xe0, 0xb7]);
    // Either Ctrl still held is Ctrl.
    pc.kbc.key(KEY_RIGHTCTRL, true);
    pc.kbc.key(KEY_LEFTCTRL, false);
    assert_eq!(pc.drain(), [0xe0, 0x1d, 0x9d]);
    assert_eq!(pc.tap(KEY_PAUSE), [0xe0, 0x46, 0xe0, 0xc6]);
    pc.kbc.key(KEY_RIGHTCTRL, false);
    assert_eq!(pc.drain(), [0xe0, 0x9d]);
    // Alt+Print Screen is SysRq.
    pc.kbc.key(KEY_RIGHTALT, true);
    assert_eq!(pc.drain(), [0xe0, 0x38]);
    assert_eq!(pc.tap(KEY_SYSRQ), [0x54, 0xd4]);
    pc.kbc.key(KEY_RIGHTALT, false);
    assert_eq!(pc.drain(), [0xe0, 0xb8]);
    assert_eq!(pc.tap(KEY_PAUSE), [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
    // F7's set 2 code is above 0x7F and still translates.
    assert_eq!(pc.tap(65), [0x41, 0xc1]);
    // Keys a PC keyboard lacks send nothing.
    assert_eq!(pc.tap(0x2ff), NOTHING);
}

#[test]
fn without_translation_the_guest_sees_set_2_or_the_set_it_chose() {
    let mut pc = Pc::new();
    pc.seabios_init();
    // F0 is acknowledged, then its argument 0 with the set's number.
    assert_eq!(
        pc.kbd(&[0xf0, 0x00]),
        [0xfa, 0xfa, 0x41],
        "set 2, translated"
    );
    pc.write_ctr(CB_KBD_INT | CB_SYSTEM);
    assert_eq!(pc.kbd(&[0xf0, 0x00]), [0xfa, 0xfa, 0x02]);
    assert_eq!(pc.kbd(&[0xf2]), [0xfa, 0xab, 0x83]);
    assert_eq!(pc.tap(KEY_A), [0x1c, 0xf0, 0x1c]);
    assert_eq!(pc.tap(KEY_UP), [0xe0, 0x75, 0xe0, 0xf0, 0x75]);
    // Set 1 from the keyboard itself.
    assert_eq!(pc.kbd(&[0xf0, 0x01]), [0xfa, 0xfa]);
    assert_eq!(pc.kbd(&[0xf0, 0x00]), [0xfa, 0xfa, 0x01]);
    assert_eq!(pc.tap(KEY_A), [0x1e, 0x9e]);
    assert_eq!(pc.tap(KEY_PAUSE), [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
    // Set 3 is answered for, but keys keep set 2's codes.
    assert_eq!(pc.kbd(&[0xf0, 0x03]), [0xfa, 0xfa]);
    assert_eq!(pc.kbd(&[0xf0, 0x00]), [0xfa, 0xfa, 0x03]);
    assert_eq!(pc.kbd(&[0xf0, 0x07]), [0xfa, 0xfe], "no set 7");
}

#[test]
fn keyboard_commands_answer_as_an_mf2_keyboard() {
    let mut pc = Pc::new();
    pc.seabios_init();
    assert_eq!(pc.kbd(&[0xee]), [0xee]);
    assert_eq!(pc.kbd(&[0xed, 0x07]), [0xfa, 0xfa]);
    assert_eq!(pc.kbc.keyboard_leds(), 0x07);
    assert_eq!(pc.kbd(&[0xfe]), [0xfa], "resend repeats the last byte");
    assert_eq!(pc.kbd(&[0x01]), [0xfe], "unknown commands ask for a resend");
    assert_eq!(pc.kbd(&[0xf7, 0xfb, 0x1c]), [0xfa, 0xfa, 0xfa]);
    // A command in place of an argument is a command.
    assert_eq!(pc.kbd(&[0xed, 0xee]), [0xfa, 0xee]);
    // Scanning off: keys are lost; F5 also restores the defaults.
    assert_eq!(pc.kbd(&[0xf5]), [0xfa]);
    assert_eq!(pc.kbc.keyboard_leds(), 0);
    assert_eq!(pc.tap(KEY_A), NOTHING);
    assert_eq!(pc.kbd(&[0xf4]), [0xfa]);
    assert_eq!(pc.tap(KEY_A), [0x1e, 0x9e]);
    // Keys queued behind a command's answer stay queued.
    pc.write_ctr(CB_KBD_DISABLED | CB_TRANSLATE);
    pc.kbc.key(KEY_A, true);
    pc.outb(DATA_PORT, 0xee);
    pc.write_ctr(CB_TRANSLATE);
    assert_eq!(pc.drain(), [0xee, 0x1e]);
    assert_eq!(pc.kbd(&[0xff]), [0xfa, 0xaa]);
    pc.kbc.key(KEY_A, false);
    assert_eq!(pc.drain(), [0x9e]);
}

#[test]
fn a_disabled_interface_holds_its_bytes_until_enabled() {
    let mut pc = Pc::new();
    pc.seabios_init();
    assert_eq!(pc.ctl(0xad), NOTHING);
    let rises = pc.irq1.rises();
    pc.kbc.key(KEY_A, true);
    assert_eq!(pc.status() & STATUS_OBF, 0);
    assert_eq!(pc.irq1.rises(), rises);
    // Controller answers still come through.
    assert_eq!(pc.ctl(0x20), [0x71]);
    assert_eq!(pc.ctl(0xae), [0x1e]);
    assert_eq!(pc.irq1.rises(), rises + 2, "the answer, then the key");

    // The mouse the same way.
    pc.write_ctr(CB_KBD_INT | CB_AUX_INT | CB_TRANSLATE | CB_AUX_DISABLED);
    pc.outb(COMMAND_PORT, 0xd4);
    pc.outb(DATA_PORT, 0xf4);
    assert_eq!(
        pc.status() & STATUS_OBF,
        0,
        "the ACK waits behind the clock"
    );
    pc.outb(COMMAND_PORT, 0xa8);
    assert_eq!(pc.drain_aux(), [0xfa]);
}

#[test]
fn keystrokes_queue_whole_and_at_most_16_bytes() {
    let mut pc = Pc::new();
    pc.seabios_init();
    pc.ctl(0xad);
    // Releases are two bytes each in set 2: eight fit, the rest are lost.
    for key in 16..28 {
        pc.kbc.key(key, false);
    }
    assert_eq!(pc.kbc.state().keyboard.data.len(), 16);
    let bytes = pc.ctl(0xae);
    assert_eq!(bytes.len(), 8);
    assert!(bytes.iter().all(|b| b & 0x80 != 0), "{bytes:x?}");
    // A three-byte sequence does not go into two bytes of room.
    pc.ctl(0xad);
    for key in 16..23 {
        pc.kbc.key(key, false);
    }
    pc.kbc.key(KEY_UP, false);
    assert_eq!(pc.kbc.state().keyboard.data.len(), 14);
    pc.kbc.key(KEY_UP, true);
    assert_eq!(pc.kbc.state().keyboard.data.len(), 16);
}

#[test]
fn a_mouse_packet_raises_irq_12_and_aux_obf() {
    let mut pc = Pc::new();
    pc.seabios_init();
    pc.write_ctr(CB_KBD_INT | CB_AUX_INT | CB_SYSTEM | CB_TRANSLATE);
    // Reporting is off until the guest enables it.
    pc.kbc.mouse_motion(5, 5, 0);
    assert_eq!(pc.status() & STATUS_OBF, 0);
    assert_eq!(pc.aux(&[0xf4]), [0xfa]);
    let rises = pc.irq12.rises();
    let kbd_rises = pc.irq1.rises();

    // Right 5, down 3: y is up in PS/2, so -3 with its sign bit.
    pc.kbc.mouse_motion(5, 3, 0);
    assert_eq!(pc.status() & (STATUS_OBF | STATUS_AUX_OBF), 0x21);
    assert!(pc.irq12.level());
    assert!(!pc.irq1.level());
    assert_eq!(pc.drain_aux(), [0x28, 0x05, 0xfd]);
    assert_eq!(pc.irq12.rises(), rises + 3);
    assert_eq!(pc.irq1.rises(), kbd_rises);

    // Buttons report without movement.
    pc.kbc.mouse_button(0x110, true);
    assert_eq!(pc.drain_aux(), [0x09, 0x00, 0x00]);
    pc.kbc.mouse_button(0x111, true);
    pc.kbc.mouse_motion(-1, 0, 0);
    assert_eq!(pc.drain_aux(), [0x0b, 0x00, 0x00, 0x1b, 0xff, 0x00]);
    pc.kbc.mouse_button(0x110, false);
    pc.kbc.mouse_button(0x111, false);
    assert_eq!(pc.drain_aux(), [0x0a, 0x00, 0x00, 0x08, 0x00, 0x00]);
    pc.kbc.mouse_button(0x113, true);
    assert_eq!(
        pc.drain_aux(),
        NOTHING,
        "a side button is not a PS/2 button"
    );

    // A long move is split into packets the counters can carry.
    pc.kbc.mouse_motion(300, 0, 0);
    assert_eq!(pc.drain_aux(), [0x08, 0xff, 0x00, 0x08, 0x2d, 0x00]);
    pc.kbc.mouse_motion(-300, 0, 0);
    assert_eq!(pc.drain_aux(), [0x18, 0x00, 0x00, 0x18, 0xd4, 0x00]);
}

#[test]
fn a_guest_that_falls_behind_gets_an_overflow_bit() {
    let mut pc = Pc::new();
    pc.write_ctr(CB_AUX_INT);
    assert_eq!(pc.aux(&[0xf4]), [0xfa]);
    pc.kbc.mouse_motion(10_000, 0, 0);
    // Five packets fit in the mouse's 16 bytes; the rest saturates the
    // counter and comes once there is room, marked as overflowed.
    let mut expected = [0x08, 0xff, 0x00].repeat(5);
    expected.extend([0x48, 0xff, 0x00]);
    assert_eq!(pc.drain_aux(), expected);
    pc.kbc.mouse_motion(i32::MIN, i32::MAX, i32::MIN);
    let bytes = pc.drain_aux();
    assert_eq!(bytes.len(), 18);
    assert_eq!(
        &bytes[15..],
        [0xf8, 0x00, 0x00],
        "both overflowed, both negative"
    );
}

#[test]
fn the_intellimouse_knock_adds_a_wheel_byte() {
    let mut pc = Pc::new();
    pc.write_ctr(CB_AUX_INT);
    assert_eq!(pc.aux(&[0xf4]), [0xfa]);
    pc.kbc.mouse_motion(0, 0, 1);
    assert_eq!(pc.drain_aux(), NOTHING, "no wheel before the knock");
    // An interrupted knock does not count.
    pc.aux(&[0xf3, 200, 0xf3, 100, 0xe6, 0xf3, 80]);
    assert_eq!(pc.aux(&[0xf2]), [0xfa, 0x00]);
    pc.aux(&[0xf3, 200, 0xf3, 100, 0xf3, 80]);
    assert_eq!(pc.aux(&[0xf2]), [0xfa, 0x03]);
    pc.aux(&[0xf4]);
    // Wheel up one notch is -1 in the fourth byte.
    pc.kbc.mouse_motion(0, 0, 1);
    assert_eq!(pc.drain_aux(), [0x08, 0x00, 0x00, 0xff]);
    pc.kbc.mouse_motion(1, -1, -20);
    assert_eq!(
        pc.drain_aux(),
        [
            0x08, 0x01, 0x01, 0x07, 0x08, 0x00, 0x00, 0x07, 0x08, 0x00, 0x00, 0x06
        ]
    );
    // A reset forgets the IntelliMouse mode.
    assert_eq!(pc.aux(&[0xff]), [0xfa, 0xaa, 0x00]);
    assert_eq!(pc.aux(&[0xf2]), [0xfa, 0x00]);
}

#[test]
fn mouse_status_remote_mode_scaling_and_wrap() {
    let mut pc = Pc::new();
    pc.write_ctr(CB_AUX_INT);
    assert_eq!(pc.aux(&[0xe9]), [0xfa, 0x00, 0x02, 100]);
    assert_eq!(pc.aux(&[0xe8, 0x03, 0xf3, 40, 0xe7, 0xf4]), [0xfa; 6]);
    pc.kbc.mouse_button(0x110, true);
    pc.drain_aux();
    assert_eq!(pc.aux(&[0xe9]), [0xfa, 0x34, 0x03, 40]);
    assert_eq!(pc.aux(&[0xe8, 0x04]), [0xfa, 0xfe], "no resolution 4");
    assert_eq!(pc.aux(&[0xf3, 33]), [0xfa, 0xfe], "no rate 33");
    assert_eq!(pc.aux(&[0x00]), [0xfe], "unknown command");

    // 2:1 scaling doubles stream reports past 5 counts.
    pc.kbc.mouse_motion(4, 0, 0);
    pc.kbc.mouse_motion(10, 0, 0);
    assert_eq!(pc.drain_aux(), [0x09, 0x06, 0x00, 0x09, 0x14, 0x00]);
    pc.aux(&[0xe6]);

    // Remote mode: movement waits for a read-data request.
    assert_eq!(pc.aux(&[0xf0]), [0xfa]);
    pc.kbc.mouse_motion(7, -7, 0);
    pc.kbc.mouse_motion(1, 0, 0);
    assert_eq!(pc.drain_aux(), NOTHING);
    assert_eq!(pc.aux(&[0xeb]), [0xfa, 0x09, 0x08, 0x07]);
    assert_eq!(pc.aux(&[0xeb]), [0xfa, 0x09, 0x00, 0x00]);
    pc.kbc.mouse_motion(1000, 0, 0);
    assert_eq!(pc.aux(&[0xeb]), [0xfa, 0x49, 0xff, 0x00]);
    assert_eq!(pc.aux(&[0xea]), [0xfa]);

    // Wrap mode echoes until EC (or FF).
    assert_eq!(pc.aux(&[0xee, 0x12, 0xf4, 0xec]), [0xfa, 0x12, 0xf4, 0xfa]);
    assert_eq!(pc.aux(&[0xfe]), [0xfa], "resend repeats the last byte");
    assert_eq!(pc.aux(&[0xf6, 0xe9]), [0xfa, 0xfa, 0x04, 0x02, 100]);
}

#[test]
fn the_output_port_resets_the_machine_and_moves_a20() {
    let mut pc = Pc::new();
    assert_eq!(pc.ctl(0xd0), [0xcf]);
    assert_eq!(pc.ctl_with(0xd1, 0xdd), NOTHING);
    assert!(!pc.a20.is_open());
    // Bits 4 and 5 read the buffer's state (empty), not what was written.
    assert_eq!(pc.ctl(0xd0), [0xcd]);
    pc.ctl_with(0xd1, 0xdf);
    assert!(pc.a20.is_open());
    assert_eq!(pc.control.stop_reason(), None);
    // The commands of HP's and most other controllers.
    pc.ctl(0xdd);
    assert!(!pc.a20.is_open());
    assert_eq!(pc.ctl(0xd0), [0xcd]);
    pc.ctl(0xdf);
    assert!(pc.a20.is_open());
    assert_eq!(pc.a20.changes(), 4);
    // The output port shows the buffer's state in bits 4 and 5.
    pc.outb(COMMAND_PORT, 0xd2);
    pc.outb(DATA_PORT, 0x42);
    pc.outb(COMMAND_PORT, 0xd0);
    assert_eq!(pc.drain(), [0x42, 0xdf]);
    // Pulses that leave bit 0 alone do nothing.
    for command in [0xff, 0xf1, 0xfd] {
        pc.ctl(command);
    }
    assert_eq!(pc.control.stop_reason(), None);
    // The reset line: through the output port, or pulsed.
    pc.ctl_with(0xd1, 0xde);
    assert_eq!(pc.control.stop_reason(), Some(StopReason::Reset));
    for command in [0xfe, 0xf0] {
        pc.control.clear();
        pc.ctl(command);
        assert_eq!(pc.control.stop_reason(), Some(StopReason::Reset));
    }
}

#[test]
fn d2_and_d3_bytes_pass_for_the_devices_untranslated() {
    let mut pc = Pc::new();
    pc.seabios_init();
    pc.write_ctr(CB_KBD_INT | CB_AUX_INT | CB_TRANSLATE);
    pc.outb(COMMAND_PORT, 0xd2);
    pc.outb(DATA_PORT, 0x1c);
    assert!(pc.irq1.level());
    assert_eq!(pc.drain_tagged(), [(0x1c, false)]);
    pc.outb(COMMAND_PORT, 0xd3);
    pc.outb(DATA_PORT, 0x1c);
    assert!(pc.irq12.level());
    assert_eq!(pc.drain_tagged(), [(0x1c, true)]);
    // Interrupts off: the status still shows the byte.
    pc.write_ctr(CB_TRANSLATE);
    pc.outb(COMMAND_PORT, 0xd3);
    pc.outb(DATA_PORT, 0x77);
    assert!(!pc.irq12.level());
    assert_eq!(pc.drain_tagged(), [(0x77, true)]);
    // Controller RAM beyond the command byte, the input port, the password.
    pc.ctl_with(0x7f, 0x99);
    assert_eq!(pc.ctl(0x3f), [0x99]);
    assert_eq!(pc.ctl(0xc0), [0x80]);
    assert_eq!(pc.ctl(0xa4), [0xf1]);
    // Status bit 3 follows the port last written.
    assert_ne!(pc.status() & STATUS_COMMAND, 0);
    pc.outb(DATA_PORT, 0xee);
    assert_eq!(pc.status() & STATUS_COMMAND, 0);
    assert_eq!(pc.drain(), [0xee]);
}

#[test]
fn wide_accesses_see_one_port_and_float_the_rest() {
    let mut pc = Pc::new();
    let status = u32::from(pc.status());
    assert_eq!(pc.command.read(0, 2), 0xff00 | status);
    assert_eq!(pc.command.read(0, 4), 0xffff_ff00 | status);
    assert_eq!(pc.command.read(1, 1), 0xff);
    pc.command.write(1, 1, 0xfe);
    assert_eq!(
        pc.control.stop_reason(),
        None,
        "a write beyond the port is dropped"
    );
    pc.command.write(0, 2, 0xff_aa);
    assert_eq!(pc.drain(), [0x55]);
}

/// Leaves a bit of everything in flight: a packet half read, keys queued
/// behind a disabled keyboard, a command waiting for its data byte.
fn busy_pc() -> Pc {
    let mut pc = Pc::new();
    pc.seabios_init();
    pc.write_ctr(CB_KBD_INT | CB_AUX_INT | CB_TRANSLATE | CB_SYSTEM);
    pc.aux(&[0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf4]);
    pc.kbc.mouse_button(0x112, true);
    pc.kbc.mouse_motion(-2, 400, 1);
    assert_eq!(pc.inb(DATA_PORT), 0x0c, "the middle button's packet");
    pc.outb(COMMAND_PORT, 0xad);
    pc.kbc.key(KEY_UP, true);
    pc.outb(DATA_PORT, 0xed);
    pc.outb(DATA_PORT, 0x04);
    pc.outb(COMMAND_PORT, 0xd1);
    assert_eq!(pc.kbc.state().mouse.data.len(), 10);
    pc
}

#[test]
fn state_round_trips_and_drives_the_lines() {
    let mut a = busy_pc();
    let saved = a.data.save_state();
    let mut b = Pc::new();
    b.data.restore_state(&saved).unwrap();
    assert_eq!(b.kbc.state(), a.kbc.state());
    assert!(b.irq12.level(), "the restored buffer holds a mouse byte");
    assert_eq!(b.data.save_state(), saved);
    assert_eq!(b.command.save_state(), a.command.save_state());
    // Both carry on alike.
    for pc in [&mut a, &mut b] {
        pc.outb(DATA_PORT, 0xdf);
        pc.outb(COMMAND_PORT, 0xae);
    }
    assert_eq!(a.drain_tagged(), b.drain_tagged());
    assert_eq!(b.kbc.keyboard_leds(), 0x04);
    assert!(b.a20.is_open());
}

#[test]
fn restore_refuses_foreign_and_inconsistent_states() {
    let mut pc = busy_pc();
    assert_refuses_foreign_states(&mut pc.data);
    assert_refuses_foreign_states(&mut pc.command);
    let mut state = pc.kbc.state();
    state.keyboard.scancode_set = 9;
    let bad = DeviceState::encode(KIND, VERSION, &state);
    assert!(matches!(
        pc.data.restore_state(&bad),
        Err(StateError::Invalid { .. })
    ));
    let mut state = pc.kbc.state();
    state.mouse.data = vec![0; DATA_LIMIT + 1].into();
    let bad = DeviceState::encode(KIND, VERSION, &state);
    assert!(pc.data.restore_state(&bad).is_err());
    let mut state = pc.kbc.state();
    state.mouse.dx = 1000;
    let bad = DeviceState::encode(KIND, VERSION, &state);
    assert!(pc.data.restore_state(&bad).is_err());
}

#[test]
fn reset_returns_to_power_on_and_lowers_the_lines() {
    let mut pc = busy_pc();
    pc.ctl_with(0xd1, 0xdd);
    pc.outb(COMMAND_PORT, 0xd2);
    pc.outb(DATA_PORT, 0x11);
    assert!(pc.irq1.level());
    pc.command.reset();
    assert_ne!(
        pc.kbc.state(),
        I8042State::power_on(),
        "the command port resets nothing"
    );
    pc.data.reset();
    assert_eq!(pc.kbc.state(), I8042State::power_on());
    assert!(!pc.irq1.level() && !pc.irq12.level());
    assert!(!pc.a20.is_open(), "the gate is the machine's to reopen");
    assert_eq!(pc.status(), STATUS_UNLOCKED | STATUS_COMMAND);
    assert_eq!(pc.read_ctr(), CB_POWER_ON);
    // The keyboard scans in set 2 untranslated again.
    assert_eq!(pc.tap(KEY_A), [0x1c, 0xf0, 0x1c]);
}

/// A small deterministic generator for the guest-input test.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
}

#[test]
fn no_guest_or_host_input_panics_or_floods() {
    for seed in 0..64u64 {
        let mut pc = Pc::new();
        let mut rng = Lcg(seed);
        for _ in 0..2000 {
            let r = rng.next();
            let value = (r >> 8) as u8;
            match r % 8 {
                0 | 1 => pc.outb(DATA_PORT, value),
                // Not the reset pulses too often: they only stop the machine.
                2 => pc.outb(COMMAND_PORT, value),
                3 | 4 => {
                    pc.inb(DATA_PORT);
                }
                5 => pc.kbc.key((r >> 16) as u16, r & 0x100 != 0),
                6 => {
                    let big = [i32::MIN, -300, -1, 0, 1, 300, i32::MAX];
                    let pick = |n: u32| big[n as usize % big.len()];
                    pc.kbc
                        .mouse_motion(pick(r >> 8), pick(r >> 12), pick(r >> 16));
                    pc.kbc
                        .mouse_button(0x110 + (r >> 20) as u16 % 4, r & 0x100 != 0);
                }
                _ => {
                    pc.status();
                }
            }
            let state = pc.kbc.state();
            assert!(state.validate().is_ok(), "seed {seed}: {state:?}");
        }
        // Whatever is queued drains in bounded reads.
        pc.drain_tagged();
        let saved = pc.data.save_state();
        let mut other = Pc::new();
        other.data.restore_state(&saved).unwrap();
    }
}

/// What a window pushes into the machine's keyboard and tablet handles
/// reaches the guest at the next device tick: keys as set 1 bytes, the
/// absolute pointer as PS/2 movements (on a 640x480 scale), buttons as
/// button bits.
#[test]
fn host_input_handles_are_drained_at_each_tick() {
    let mut pc = Pc::new();
    pc.seabios_init();
    pc.write_ctr(CB_KBD_INT | CB_AUX_INT | CB_SYSTEM | CB_TRANSLATE);
    assert_eq!(pc.aux(&[0xf4]), [0xfa]);
    let keyboard = InputHandle::default();
    let tablet = InputHandle::default();
    pc.kbc.connect_host(keyboard.clone(), tablet.clone());

    keyboard.key(KEY_A, true);
    keyboard.key(KEY_A, false);
    assert_eq!(pc.drain(), NOTHING, "nothing before the tick");
    pc.data.tick(0);
    assert_eq!(pc.drain(), [0x1e, 0x9e]);

    // The first position only sets where the pointer is.
    tablet.move_to(0, 0);
    pc.data.tick(0);
    assert_eq!(pc.drain_aux(), NOTHING);
    // A tenth of the width right and down: 64 and 48 on 640x480.
    tablet.move_to(ABS_MAX / 10 + 1, ABS_MAX / 10 + 1);
    tablet.key(0x110, true);
    pc.data.tick(0);
    assert_eq!(
        pc.drain_aux(),
        [0x28, 0x40, 0xd0, 0x09, 0x00, 0x00],
        "a move (y up is negative), then the left button"
    );
    // The command port leaves the handles alone.
    keyboard.key(KEY_A, true);
    pc.command.tick(0);
    assert_eq!(pc.drain(), NOTHING);
    pc.data.tick(0);
    assert_eq!(pc.drain(), [0x1e]);
}
