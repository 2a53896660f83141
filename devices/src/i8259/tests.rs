//! The pair driven the way guests drive it: Linux's and SeaBIOS's
//! initialisation and EOI byte sequences, then the 8259A's corner cases.

use std::time::Duration;

use super::*;
use crate::testing::assert_refuses_foreign_states;

/// The pair, its three port windows and the machine's run control.
struct Pc {
    pic: I8259,
    master: PicPorts,
    slave: PicPorts,
    elcr: PicPorts,
    control: Arc<RunControl>,
}

impl Pc {
    fn new() -> Pc {
        let control = Arc::new(RunControl::new());
        let pic = I8259::new(control.clone());
        Pc {
            master: pic.master_ports(),
            slave: pic.slave_ports(),
            elcr: pic.elcr_ports(),
            pic,
            control,
        }
    }

    /// `outb` to a PC port number.
    fn outb(&mut self, port: u16, value: u8) {
        let (window, offset) = self.window(port);
        window.write(offset, 1, u32::from(value));
    }

    /// `inb` from a PC port number.
    fn inb(&mut self, port: u16) -> u8 {
        let (window, offset) = self.window(port);
        window.read(offset, 1) as u8
    }

    fn window(&mut self, port: u16) -> (&mut PicPorts, u16) {
        match port {
            0x20..=0x21 => (&mut self.master, port - MASTER_PORT),
            0xa0..=0xa1 => (&mut self.slave, port - SLAVE_PORT),
            0x4d0..=0x4d1 => (&mut self.elcr, port - ELCR_PORT),
            _ => panic!("port {port:#x} is not the PIC's"),
        }
    }

    /// Linux's `init_8259A(0)` (arch/x86/kernel/i8259.c): everything masked,
    /// vectors 0x30 and 0x38, then the cached masks with only the cascade open.
    fn linux_init(&mut self) {
        for (port, value) in [
            (0x21, 0xff),
            (0xa1, 0xff),
            (0x20, 0x11),
            (0x21, 0x30),
            (0x21, 0x04),
            (0x21, 0x01),
            (0xa0, 0x11),
            (0xa1, 0x38),
            (0xa1, 0x02),
            (0xa1, 0x01),
            (0x21, 0xfb),
            (0xa1, 0xff),
        ] {
            self.outb(port, value);
        }
    }

    /// SeaBIOS's `pic_reset(0x08, 0x70)` (src/hw/pic.c): both ICW1s, both
    /// ICW2s, ..., then all masked but the cascade.
    fn seabios_init(&mut self) {
        for (port, value) in [
            (0x20, 0x11),
            (0xa0, 0x11),
            (0x21, 0x08),
            (0xa1, 0x70),
            (0x21, 0x04),
            (0xa1, 0x02),
            (0x21, 0x01),
            (0xa1, 0x01),
            (0x21, 0xfb),
            (0xa1, 0xff),
        ] {
            self.outb(port, value);
        }
    }

    /// Opens the mask bits of `irqs`, leaving the rest as they are.
    fn unmask(&mut self, irqs: &[usize]) {
        for &irq in irqs {
            let port = if irq < 8 { 0x21 } else { 0xa1 };
            let mask = self.inb(port) & !(1 << (irq % 8));
            self.outb(port, mask);
        }
    }

    /// OCW3 "read ISR", the register, then back to IRR (as Linux's
    /// `i8259A_irq_real` does).
    fn isr(&mut self, command: u16) -> u8 {
        self.outb(command, 0x0b);
        let isr = self.inb(command);
        self.outb(command, 0x0a);
        isr
    }

    fn pending(&self) -> bool {
        self.pic.interrupt_pending()
    }

    fn ack(&self) -> u8 {
        self.pic
            .acknowledge()
            .expect("the 8259A always answers INTA")
    }
}

#[test]
fn linux_initialisation_then_a_timer_interrupt_with_specific_eoi() {
    let mut pc = Pc::new();
    pc.linux_init();
    assert_eq!(pc.inb(0x21), 0xfb);
    assert_eq!(pc.inb(0xa1), 0xff);
    let timer = pc.pic.input(0);
    // Masked: a tick is latched but does not interrupt.
    timer.pulse();
    assert!(!pc.pending());
    assert_eq!(pc.inb(0x20), 0x01, "IRR shows the latched request");
    pc.unmask(&[0]);
    assert!(pc.pending());
    assert_eq!(pc.ack(), 0x30);
    assert!(!pc.pending());
    assert_eq!(pc.isr(0x20), 0x01);
    assert_eq!(pc.inb(0x20), 0x00, "the edge request was consumed");
    // A second tick waits behind the one in service, then comes after EOI.
    timer.pulse();
    assert!(!pc.pending());
    pc.outb(0x20, 0x60); // specific EOI, level 0
    assert_eq!(pc.isr(0x20), 0);
    assert!(pc.pending());
    assert_eq!(pc.ack(), 0x30);
}

#[test]
fn seabios_initialisation_and_a_slave_interrupt_through_the_cascade() {
    let mut pc = Pc::new();
    pc.seabios_init();
    pc.unmask(&[8]);
    let rtc = pc.pic.input(8);
    rtc.pulse();
    assert!(pc.pending());
    assert_eq!(pc.ack(), 0x70);
    assert_eq!(pc.isr(0xa0), 0x01);
    assert_eq!(pc.isr(0x20), 0x04, "the master has the cascade in service");
    // SeaBIOS's pic_eoi2: non-specific EOI to the slave, then the master.
    pc.outb(0xa0, 0x20);
    pc.outb(0x20, 0x20);
    assert_eq!((pc.isr(0xa0), pc.isr(0x20)), (0, 0));
    assert!(!pc.pending());
    // The slave's mask stops its line; the master's mask on IRQ2 stops them all.
    pc.outb(0xa1, 0xff);
    rtc.pulse();
    assert!(!pc.pending());
    pc.outb(0xa1, 0xfe);
    assert!(pc.pending());
    pc.outb(0x21, 0xff);
    assert!(!pc.pending());
    pc.outb(0x21, 0xfb);
    assert_eq!(pc.ack(), 0x70);
}

#[test]
fn lower_numbers_win_and_only_a_higher_priority_nests() {
    let mut pc = Pc::new();
    pc.linux_init();
    pc.unmask(&[0, 1, 3, 5]);
    pc.pic.input(3).pulse();
    pc.pic.input(1).pulse();
    assert_eq!(pc.ack(), 0x31);
    // IRQ 3 waits while 1 is in service; IRQ 0 outranks 1 and nests.
    assert!(!pc.pending());
    pc.pic.input(0).pulse();
    assert_eq!(pc.ack(), 0x30);
    pc.pic.input(5).pulse();
    assert!(!pc.pending());
    // Non-specific EOI ends the most urgent in service: 0, then 1.
    pc.outb(0x20, 0x20);
    assert_eq!(pc.isr(0x20), 0x02);
    assert!(!pc.pending());
    pc.outb(0x20, 0x20);
    assert_eq!(pc.ack(), 0x33);
    pc.outb(0x20, 0x20);
    assert_eq!(pc.ack(), 0x35);
}

#[test]
fn slave_lines_rank_at_the_cascade_position() {
    let mut pc = Pc::new();
    pc.linux_init();
    pc.outb(0x21, 0x00);
    pc.outb(0xa1, 0x00);
    pc.pic.input(3).pulse();
    pc.pic.input(12).pulse();
    pc.pic.input(9).pulse();
    // IRQ 9 (slave input 1) beats 12, and both beat 3 by sitting on IRQ 2.
    assert_eq!(pc.ack(), 0x39);
    // With the cascade in service nothing else from the slave gets through.
    assert!(!pc.pending());
    pc.pic.input(1).pulse();
    assert_eq!(pc.ack(), 0x31, "IRQ 1 outranks the cascade");
    pc.outb(0x20, 0x61);
    // Linux's slave EOI: specific EOI to the slave, then the cascade's.
    pc.outb(0xa0, 0x61);
    pc.outb(0x20, 0x62);
    assert_eq!(pc.ack(), 0x3c);
    pc.outb(0xa0, 0x64);
    pc.outb(0x20, 0x62);
    assert_eq!(pc.ack(), 0x33);
}

#[test]
fn rotation_moves_the_lowest_priority() {
    let mut pc = Pc::new();
    pc.linux_init();
    pc.outb(0x21, 0x00);
    // Set priority: level 4 lowest, so 5 is now the highest.
    pc.outb(0x20, 0xc4);
    pc.pic.input(3).pulse();
    pc.pic.input(6).pulse();
    assert_eq!(pc.ack(), 0x36);
    // Rotate on non-specific EOI: 6 done and lowest, so 7, 0, ..., 3 come next.
    pc.outb(0x20, 0xa0);
    assert_eq!(pc.isr(0x20), 0);
    pc.pic.input(5).pulse();
    pc.pic.input(0).pulse();
    assert_eq!(pc.ack(), 0x30);
    // Rotate on specific EOI of 0: 1 becomes the highest.
    pc.outb(0x20, 0xe0);
    assert_eq!(pc.ack(), 0x33);
    pc.outb(0x20, 0x20);
    assert_eq!(pc.ack(), 0x35);
}

#[test]
fn automatic_eoi_leaves_nothing_in_service() {
    let mut pc = Pc::new();
    // Linux's init_8259A(1): ICW4 with AEOI on the master.
    for (port, value) in [(0x20, 0x11), (0x21, 0x30), (0x21, 0x04), (0x21, 0x03)] {
        pc.outb(port, value);
    }
    pc.outb(0x21, 0x00);
    pc.pic.input(1).pulse();
    assert_eq!(pc.ack(), 0x31);
    assert_eq!(pc.isr(0x20), 0);
    // Nothing in service, so a lower priority runs at once.
    pc.pic.input(4).pulse();
    assert_eq!(pc.ack(), 0x34);
    // Rotate in AEOI mode: after 4, level 5 is the highest.
    pc.outb(0x20, 0x80);
    pc.pic.input(4).pulse();
    assert_eq!(pc.ack(), 0x34);
    pc.pic.input(3).pulse();
    pc.pic.input(6).pulse();
    assert_eq!(pc.ack(), 0x36);
    // Cleared again: fixed priorities from the last rotation stay.
    pc.outb(0x20, 0x00);
    pc.pic.input(5).pulse();
    assert_eq!(
        pc.ack(),
        0x33,
        "7 was lowest after 6 rotated: 0..3 outrank 5"
    );
}

#[test]
fn level_lines_request_while_high_and_edge_lines_once_per_edge() {
    let mut pc = Pc::new();
    pc.linux_init();
    pc.unmask(&[10, 11]);
    // SeaBIOS's PIIX setup makes the PCI lines 10 and 11 level-triggered.
    pc.outb(0x4d1, 0x0c);
    assert_eq!(pc.inb(0x4d1), 0x0c);
    let level = pc.pic.input(11);
    let edge = pc.pic.input(12);
    pc.unmask(&[12]);
    level.set_level(true);
    edge.set_level(true);
    assert_eq!(pc.ack(), 0x3b);
    pc.outb(0xa0, 0x20);
    pc.outb(0x20, 0x20);
    // Still high: the level line asks again; the edge line is served once.
    assert_eq!(pc.ack(), 0x3b);
    level.set_level(false);
    pc.outb(0xa0, 0x20);
    pc.outb(0x20, 0x20);
    assert_eq!(pc.ack(), 0x3c);
    pc.outb(0xa0, 0x20);
    pc.outb(0x20, 0x20);
    assert!(!pc.pending(), "edge line held high is no new request");
    edge.set_level(false);
    edge.set_level(true);
    assert_eq!(pc.ack(), 0x3c);
}

#[test]
fn the_elcr_cannot_make_the_timer_keyboard_cascade_rtc_or_fpu_level() {
    let mut pc = Pc::new();
    pc.outb(0x4d0, 0xff);
    pc.outb(0x4d1, 0xff);
    assert_eq!((pc.inb(0x4d0), pc.inb(0x4d1)), (0xf8, 0xde));
    // A 16-bit access covers both registers, low byte first.
    pc.elcr.write(0, 2, 0x0e20);
    assert_eq!(pc.elcr.read(0, 2), 0x0e20);
    assert_eq!(
        pc.elcr.read(1, 2),
        0xff0e,
        "beyond the window reads as ones"
    );
}

#[test]
fn ltim_makes_every_input_level_triggered() {
    let mut pc = Pc::new();
    for (port, value) in [(0x20, 0x19), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01)] {
        pc.outb(port, value);
    }
    pc.outb(0x21, 0x00);
    let line = pc.pic.input(1);
    line.set_level(true);
    assert_eq!(pc.ack(), 0x21);
    pc.outb(0x20, 0x20);
    assert_eq!(pc.ack(), 0x21, "still high, so requested again");
    pc.outb(0x20, 0x20);
    line.set_level(false);
    assert!(!pc.pending());
}

#[test]
fn a_request_gone_before_inta_is_spurious_irq7() {
    let mut pc = Pc::new();
    pc.linux_init();
    pc.outb(0x4d0, 0x20);
    pc.unmask(&[5]);
    let line = pc.pic.input(5);
    line.set_level(true);
    assert!(pc.pending());
    // The level line drops between INT and INTA.
    line.set_level(false);
    assert_eq!(pc.ack(), 0x37);
    assert_eq!(pc.isr(0x20), 0, "a spurious IRQ 7 is not in service");
    // So does a request masked after INT (the CPU still runs INTA).
    pc.pic.input(3).pulse();
    pc.unmask(&[3]);
    pc.outb(0x21, 0xff);
    assert_eq!(pc.ack(), 0x37);
    assert_eq!(pc.isr(0x20), 0);
}

#[test]
fn a_slave_request_gone_before_inta_is_spurious_irq15() {
    let mut pc = Pc::new();
    pc.seabios_init();
    pc.outb(0x4d1, 0x04);
    pc.unmask(&[10]);
    let line = pc.pic.input(10);
    line.set_level(true);
    assert!(pc.pending());
    // The master has latched the cascade edge; the slave's request vanishes.
    line.set_level(false);
    assert_eq!(pc.ack(), 0x77);
    assert_eq!(pc.isr(0xa0), 0);
    assert_eq!(pc.isr(0x20), 0x04, "the master still needs its EOI");
    pc.outb(0x20, 0x20);
    assert!(!pc.pending());
}

#[test]
fn poll_mode_reads_and_acknowledges_the_best_request() {
    let mut pc = Pc::new();
    pc.linux_init();
    pc.outb(0x21, 0x00);
    pc.outb(0x20, 0x0c);
    assert_eq!(pc.inb(0x20), 0x00, "nothing pending");
    pc.pic.input(6).pulse();
    pc.pic.input(4).pulse();
    pc.outb(0x20, 0x0c);
    assert_eq!(pc.inb(0x21), 0x84, "either port reads the poll byte");
    assert_eq!(pc.isr(0x20), 0x10);
    // One read per poll command: the data port reads the mask again.
    assert_eq!(pc.inb(0x21), 0x00);
    pc.outb(0x20, 0x20);
    pc.outb(0x20, 0x0c);
    assert_eq!(pc.inb(0x20), 0x86);
}

#[test]
fn special_mask_mode_lets_lower_levels_past_a_masked_service() {
    let mut pc = Pc::new();
    pc.linux_init();
    pc.outb(0x21, 0x00);
    pc.pic.input(3).pulse();
    assert_eq!(pc.ack(), 0x33);
    pc.pic.input(5).pulse();
    assert!(!pc.pending());
    // Mask 3 and enter special mask mode: 5 runs though 3 is in service.
    pc.outb(0x21, 0x08);
    pc.outb(0x20, 0x68);
    assert_eq!(pc.ack(), 0x35);
    // Leaving it restores normal nesting: 6 waits behind 3 again.
    pc.outb(0x20, 0x48);
    pc.outb(0x20, 0x65);
    pc.pic.input(6).pulse();
    assert!(!pc.pending());
}

#[test]
fn special_fully_nested_mode_lets_a_higher_slave_line_nest() {
    for sfnm in [false, true] {
        let mut pc = Pc::new();
        let icw4 = if sfnm { 0x11 } else { 0x01 };
        for (port, value) in [(0x20, 0x11), (0x21, 0x30), (0x21, 0x04), (0x21, icw4)] {
            pc.outb(port, value);
        }
        for (port, value) in [(0xa0, 0x11), (0xa1, 0x38), (0xa1, 0x02), (0xa1, 0x01)] {
            pc.outb(port, value);
        }
        pc.outb(0x21, 0x00);
        pc.outb(0xa1, 0x00);
        pc.pic.input(12).pulse();
        assert_eq!(pc.ack(), 0x3c);
        pc.pic.input(9).pulse();
        assert_eq!(pc.pending(), sfnm, "sfnm {sfnm}");
        if sfnm {
            assert_eq!(pc.ack(), 0x39);
        }
    }
}

#[test]
fn icw1_resets_the_edge_sense_the_mask_and_priorities() {
    let mut pc = Pc::new();
    let line = pc.pic.input(4);
    line.set_level(true);
    pc.linux_init();
    pc.outb(0x20, 0xc2);
    pc.outb(0x21, 0x00);
    // Held high through initialisation: no edge, no request.
    assert!(!pc.pending());
    line.set_level(false);
    line.set_level(true);
    assert!(pc.pending());
    pc.outb(0x20, 0x11);
    assert!(!pc.pending());
    assert_eq!(pc.inb(0x20), 0, "IRR cleared");
    for value in [0x30, 0x04, 0x01] {
        pc.outb(0x21, value);
    }
    assert_eq!(pc.inb(0x21), 0x00, "IMR cleared");
    pc.pic.input(3).pulse();
    pc.pic.input(1).pulse();
    assert_eq!(pc.ack(), 0x31, "fixed priorities again");
}

#[test]
fn single_mode_without_icw4_takes_two_words() {
    let mut pc = Pc::new();
    pc.outb(0x20, 0x12);
    pc.outb(0x21, 0x48);
    pc.outb(0x21, 0xf0);
    assert_eq!(pc.inb(0x21), 0xf0, "the third write is the mask");
    pc.pic.input(2).pulse();
    assert_eq!(pc.ack(), 0x4a);
}

#[test]
fn a_nothing_acknowledge_answers_irq7() {
    let pc = Pc::new();
    assert!(!pc.pending());
    // Power-on vector base 0: the spurious vector is 7.
    assert_eq!(pc.ack(), 0x07);
}

#[test]
fn output_changes_wake_a_halted_cpu() {
    let mut pc = Pc::new();
    pc.linux_init();
    let seen = pc.control.irq_epoch();
    let masked = pc.pic.input(6);
    masked.pulse();
    assert_eq!(
        pc.control.irq_epoch(),
        seen,
        "a masked line changes nothing"
    );
    pc.unmask(&[6]);
    assert_ne!(pc.control.irq_epoch(), seen);
    pc.ack();
    pc.outb(0x20, 0x20);
    // A device thread raises IRQ 1 while the CPU waits as in HLT.
    pc.unmask(&[1]);
    let seen = pc.control.irq_epoch();
    let line = pc.pic.input(1);
    let device = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        line.pulse();
    });
    pc.control.wait_for_irq(seen, Duration::from_secs(30));
    assert!(pc.pending());
    device.join().unwrap();
}

#[test]
fn state_round_trips_and_reset_returns_to_power_on() {
    let mut a = Pc::new();
    a.linux_init();
    a.outb(0x4d1, 0x08);
    a.unmask(&[1, 11]);
    a.pic.input(11).set_level(true);
    a.pic.input(1).pulse();
    assert_eq!(a.ack(), 0x31);
    let saved = a.master.save_state();
    let mut b = Pc::new();
    b.master.restore_state(&saved).unwrap();
    b.slave.restore_state(&a.slave.save_state()).unwrap();
    b.elcr.restore_state(&a.elcr.save_state()).unwrap();
    assert_eq!(b.master.save_state(), saved);
    assert!(!b.pending(), "IRQ 1 in service holds the cascade back");
    for pc in [&mut a, &mut b] {
        pc.outb(0x20, 0x20);
        assert_eq!(pc.ack(), 0x3b);
    }
    assert_eq!(a.pic.state(), b.pic.state());
    // Reset: registers to power-on, ELCR included; the wire stays high.
    a.master.reset();
    a.slave.reset();
    a.elcr.reset();
    assert!(!a.pending());
    let state = a.pic.state();
    assert_eq!(state.slave.levels, 0x08);
    assert_eq!(
        state,
        PicPairState {
            slave: PicChipState {
                levels: 0x08,
                ..PicChipState::default()
            },
            ..PicPairState::default()
        }
    );
}

#[test]
fn restore_refuses_foreign_states() {
    let mut pc = Pc::new();
    assert_refuses_foreign_states(&mut pc.master);
    assert_refuses_foreign_states(&mut pc.slave);
    assert_refuses_foreign_states(&mut pc.elcr);
    let slave_state = pc.slave.save_state();
    assert!(pc.master.restore_state(&slave_state).is_err());
}
