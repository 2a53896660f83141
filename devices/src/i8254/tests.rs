//! The timer over virtual time: an instruction-counted clock moved by hand,
//! the byte sequences Linux and SeaBIOS write, and IRQ 0 watched edge by edge.
//!
//! Most tests run the clock at 838 ticks per input clock (just under 1 GHz),
//! so input clocks fall on whole ticks and counts are exact; the ones that
//! look at long runs use a 1 GHz nanosecond clock, where they are not.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::*;
use crate::testing::assert_refuses_foreign_states;

/// A nanosecond clock's ticks a second.
const NS: u64 = 1_000_000_000;
/// A clock whose ticks divide the input clock exactly.
const EXACT_HZ: u64 = PIT_HZ * 838;

/// An interrupt line that counts its rising edges.
#[derive(Debug, Default)]
struct EdgeCounter {
    level: AtomicBool,
    rises: AtomicU32,
}

impl IrqLine for EdgeCounter {
    fn set_level(&self, high: bool) {
        if high && !self.level.swap(true, Ordering::SeqCst) {
            self.rises.fetch_add(1, Ordering::SeqCst);
        } else if !high {
            self.level.store(false, Ordering::SeqCst);
        }
    }
}

/// A timer, its port windows, its clock and its IRQ 0.
struct Pc {
    pit: I8254,
    ports: PitPorts,
    port61: SpeakerPort,
    clock: Arc<VirtualClock>,
    irq0: Arc<EdgeCounter>,
}

impl Pc {
    fn new() -> Pc {
        Pc::with_clock_hz(EXACT_HZ)
    }

    fn with_clock_hz(hz: u64) -> Pc {
        let clock = Arc::new(VirtualClock::instruction_counted(hz, 1));
        let irq0 = Arc::new(EdgeCounter::default());
        let pit = I8254::new(clock.clone(), irq0.clone());
        Pc {
            ports: pit.ports(),
            port61: pit.speaker_port(),
            pit,
            clock,
            irq0,
        }
    }

    fn outb(&mut self, port: u16, value: u8) {
        match port {
            0x40..=0x43 => self.ports.write(port - PIT_PORT, 1, u32::from(value)),
            0x61 => self.port61.write(0, 1, u32::from(value)),
            _ => panic!("port {port:#x} is not the timer's"),
        }
    }

    fn inb(&mut self, port: u16) -> u8 {
        match port {
            0x40..=0x43 => self.ports.read(port - PIT_PORT, 1) as u8,
            0x61 => self.port61.read(0, 1) as u8,
            _ => panic!("port {port:#x} is not the timer's"),
        }
    }

    /// Moves the clock to the first tick at which `clocks` input clocks have
    /// passed since tick 0.
    fn at_clock(&mut self, clocks: u64) {
        let target = self.ticks(clocks);
        let now = self.clock.now();
        assert!(target >= now, "time runs forward only");
        self.clock.retire(target - now);
    }

    /// The first clock tick at which `clocks` input clocks have passed.
    fn ticks(&self, clocks: u64) -> u64 {
        let hz = u128::from(self.clock.freq_hz());
        (u128::from(clocks) * hz).div_ceil(u128::from(PIT_HZ)) as u64
    }

    /// A control word, then a count in the access mode it chose.
    fn program(&mut self, counter: u16, control: u8, count: u16) {
        self.outb(0x43, control);
        match control & ACCESS_MASK {
            ACCESS_LSB => self.outb(0x40 + counter, count as u8),
            ACCESS_MSB => self.outb(0x40 + counter, (count >> 8) as u8),
            _ => {
                self.outb(0x40 + counter, count as u8);
                self.outb(0x40 + counter, (count >> 8) as u8);
            }
        }
    }

    /// Latches counter `counter` and reads both bytes (Linux's clocksource read).
    fn latched_count(&mut self, counter: u16) -> u16 {
        self.outb(0x43, (counter as u8) << SELECT_SHIFT);
        let lsb = self.inb(0x40 + counter);
        let msb = self.inb(0x40 + counter);
        u16::from_le_bytes([lsb, msb])
    }

    fn out2(&mut self) -> bool {
        self.inb(0x61) & P61_OUT2 != 0
    }

    fn rises(&self) -> u32 {
        self.irq0.rises.load(Ordering::SeqCst)
    }

    /// Runs the machine's device loop to tick `end`: tick, sleep to the
    /// deadline, tick again.
    fn run_ticks_until(&mut self, end: u64) {
        loop {
            let now = self.clock.now();
            let next = self.ports.tick(now);
            match next {
                Some(deadline) if deadline <= end => {
                    assert!(deadline > now, "deadlines move forward");
                    self.clock.retire(deadline - now);
                }
                _ => break,
            }
        }
        let now = self.clock.now();
        if end > now {
            self.clock.retire(end - now);
        }
        self.ports.tick(end);
    }
}

/// Linux's PIT clockevent in periodic mode at HZ=1000: control 0x34, LATCH 1193.
const LINUX_LATCH: u16 = 1193;

#[test]
fn linux_periodic_mode2_gives_a_thousand_irq0_edges_a_second() {
    let mut pc = Pc::with_clock_hz(NS);
    pc.program(0, 0x34, LINUX_LATCH);
    let base = pc.rises();
    pc.run_ticks_until(NS);
    // Edges at every multiple of 1193 clocks: 1000 of them fit in 1193182.
    assert_eq!(pc.rises() - base, 1000);
    // Linux's clocksource read: latch, LSB, MSB; 1193182 % 1193 = 182 clocks in.
    assert_eq!(pc.latched_count(0), LINUX_LATCH - 182);
}

#[test]
fn a_late_tick_still_delivers_a_mode2_edge() {
    let mut pc = Pc::new();
    pc.program(0, 0x34, 100);
    pc.ports.tick(pc.clock.now());
    let base = pc.rises();
    // OUT was low for clock 99 only; the tick comes at 150.
    pc.at_clock(150);
    pc.ports.tick(pc.clock.now());
    assert_eq!(pc.rises() - base, 1);
    assert!(pc.irq0.level.load(Ordering::SeqCst), "OUT is high again");
    // The next deadline is the next low clock, 199.
    let next = pc.ports.tick(pc.clock.now()).unwrap();
    assert_eq!(pc.ports.inner.lock_recover().time.to_pit(next), 199);
}

#[test]
fn mode2_out_is_low_for_the_last_clock_of_each_period() {
    let mut pc = Pc::new();
    pc.outb(0x61, P61_GATE2);
    pc.program(2, 0xb4, 5);
    for (clock, count, out) in [
        (0, 5, true),
        (3, 2, true),
        (4, 1, false),
        (5, 5, true),
        (9, 1, false),
        (12, 3, true),
    ] {
        pc.at_clock(clock);
        assert_eq!(pc.latched_count(2), count, "count at clock {clock}");
        assert_eq!(pc.out2(), out, "OUT at clock {clock}");
    }
}

#[test]
fn mode3_is_a_square_wave_counting_down_by_two() {
    let mut pc = Pc::new();
    // SeaBIOS's beep: counter 2, both bytes, mode 3, speaker on.
    pc.outb(0x61, P61_GATE2 | P61_SPEAKER);
    pc.program(2, 0xb6, 10);
    for (clock, count, out) in [
        (0, 10, true),
        (1, 8, true),
        (4, 2, true),
        (5, 10, false),
        (9, 2, false),
        (10, 10, true),
    ] {
        pc.at_clock(clock);
        assert_eq!(pc.latched_count(2), count, "count at clock {clock}");
        assert_eq!(pc.out2(), out, "OUT at clock {clock}");
        assert_eq!(pc.pit.speaker_level(), out);
    }
    // An odd count is high one clock longer than low: 3 of 5.
    let mut pc = Pc::new();
    pc.outb(0x61, P61_GATE2);
    pc.program(2, 0xb6, 5);
    let seen: Vec<(bool, u16)> = (0..10)
        .map(|clock| {
            pc.at_clock(clock);
            (pc.out2(), pc.latched_count(2))
        })
        .collect();
    // High: 5, then down by 1, then by 2; low: 5, then down by 3, then by 2.
    let expected = [(true, 5), (true, 4), (true, 2), (false, 5), (false, 2)];
    assert_eq!(seen, [expected, expected].concat());
}

#[test]
fn mode3_on_counter0_gives_one_irq0_edge_per_period() {
    let mut pc = Pc::new();
    pc.program(0, 0x36, 1000);
    let base = pc.rises();
    // 10,000 clocks: rising edges at 1000, 2000, ..., 10000 (the first half is
    // high from the start, which is no edge).
    pc.run_ticks_until(pc.ticks(10_000));
    assert_eq!(pc.rises() - base, 10);
}

#[test]
fn mode0_is_a_one_shot_that_raises_out_at_terminal_count() {
    let mut pc = Pc::new();
    // Linux's pit_calibrate_tsc: gate on, speaker off, counter 2 mode 0.
    let old = pc.inb(0x61);
    pc.outb(0x61, (old & !P61_SPEAKER) | P61_GATE2);
    assert!(pc.out2(), "counter 2 runs mode 3 out of reset");
    pc.outb(0x43, 0xb0);
    assert!(!pc.out2(), "OUT low once the control word is written");
    pc.outb(0x42, 0x00);
    pc.outb(0x42, 0x10);
    pc.at_clock(0x0fff);
    assert!(!pc.out2());
    assert_eq!(pc.latched_count(2), 1);
    pc.at_clock(0x1000);
    assert!(pc.out2());
    // The counter goes on through zero; OUT stays high.
    pc.at_clock(0x1002);
    assert_eq!(pc.latched_count(2), 0xfffe);
    pc.at_clock(0x11000);
    assert!(pc.out2());
}

#[test]
fn mode0_on_counter0_fires_irq0_once() {
    let mut pc = Pc::new();
    pc.program(0, 0x30, 500);
    pc.ports.tick(pc.clock.now());
    let base = pc.rises();
    assert!(!pc.irq0.level.load(Ordering::SeqCst));
    pc.run_ticks_until(pc.ticks(5000));
    assert_eq!(pc.rises() - base, 1);
    assert_eq!(pc.ports.tick(pc.clock.now()), None, "nothing more to do");
}

#[test]
fn writing_the_first_byte_stops_mode0_until_the_second() {
    let mut pc = Pc::new();
    pc.program(0, 0x30, 100);
    pc.at_clock(40);
    pc.outb(0x40, 0x34);
    pc.at_clock(60);
    assert_eq!(pc.latched_count(0), 60, "stopped at 60 to go");
    pc.at_clock(200);
    pc.ports.tick(pc.clock.now());
    assert!(!pc.irq0.level.load(Ordering::SeqCst), "OUT stayed low");
    pc.outb(0x40, 0x12);
    pc.at_clock(201);
    assert_eq!(pc.latched_count(0), 0x1234 - 1);
}

#[test]
fn mode4_strobes_out_low_for_one_clock() {
    let mut pc = Pc::new();
    // Linux's one-shot clockevent: control 0x38, then the delta.
    pc.program(0, 0x38, 50);
    pc.ports.tick(pc.clock.now());
    let base = pc.rises();
    for (clock, out) in [(49, true), (50, false), (51, true), (400, true)] {
        pc.at_clock(clock);
        pc.ports.tick(pc.clock.now());
        assert_eq!(pc.irq0.level.load(Ordering::SeqCst), out, "clock {clock}");
    }
    assert_eq!(pc.rises() - base, 1);
}

#[test]
fn a_latched_count_holds_until_read_and_a_second_latch_is_ignored() {
    let mut pc = Pc::new();
    pc.program(0, 0x34, 1000);
    pc.at_clock(300);
    pc.outb(0x43, 0x00);
    pc.at_clock(350);
    pc.outb(0x43, 0x00);
    let lsb = pc.inb(0x40);
    pc.at_clock(400);
    let msb = pc.inb(0x40);
    assert_eq!(u16::from_le_bytes([lsb, msb]), 700);
    // Unlatched reads follow the counter, low byte then high byte.
    let lsb = pc.inb(0x40);
    let msb = pc.inb(0x40);
    assert_eq!(u16::from_le_bytes([lsb, msb]), 600);
}

#[test]
fn single_byte_access_modes() {
    let mut pc = Pc::new();
    // LSB only: the high byte is zero.
    pc.program(0, 0x10, 200);
    pc.at_clock(50);
    assert_eq!((pc.inb(0x40), pc.inb(0x40)), (150, 150));
    // MSB only: the low byte is zero, reads give the high byte.
    pc.program(0, 0x20, 0x0300);
    pc.at_clock(50 + 0x101);
    assert_eq!(pc.inb(0x40), 0x01);
    pc.outb(0x43, 0x00);
    assert_eq!(pc.inb(0x40), 0x01, "a latched count reads its MSB only");
    assert_eq!(pc.inb(0x40), 0x01);
}

#[test]
fn read_back_latches_status_then_count() {
    let mut pc = Pc::new();
    pc.outb(0x43, 0x30);
    // Status only, counter 0: OUT low in mode 0, null count until written.
    pc.outb(0x43, 0xe2);
    assert_eq!(pc.inb(0x40), STATUS_NULL_COUNT | 0x30);
    pc.outb(0x40, 0x64);
    pc.outb(0x40, 0x00);
    pc.at_clock(30);
    // Both, counter 0 and 2: the status comes first, then the count.
    pc.outb(0x43, 0xca);
    assert_eq!(pc.inb(0x40), 0x30);
    assert_eq!((pc.inb(0x40), pc.inb(0x40)), (70, 0));
    assert_eq!(
        pc.inb(0x42),
        STATUS_OUT | 0x36,
        "counter 2's reset control word, idle with OUT high"
    );
    pc.at_clock(100);
    pc.outb(0x43, 0xe2);
    assert_eq!(pc.inb(0x40), STATUS_OUT | 0x30, "terminal count reached");
    // A latched status is not replaced by a second read-back.
    pc.outb(0x43, 0x30);
    pc.outb(0x43, 0xe2);
    pc.outb(0x40, 0x10);
    pc.outb(0x40, 0x00);
    pc.outb(0x43, 0xe2);
    assert_eq!(pc.inb(0x40), STATUS_NULL_COUNT | 0x30);
    pc.outb(0x43, 0xe2);
    assert_eq!(pc.inb(0x40), 0x30);
}

#[test]
fn bcd_counters_count_in_decimal() {
    let mut pc = Pc::new();
    pc.program(0, 0x31, 0x1000);
    pc.at_clock(1);
    assert_eq!(pc.latched_count(0), 0x0999);
    pc.at_clock(1000);
    assert_eq!(pc.latched_count(0), 0x0000);
    pc.at_clock(1001);
    assert_eq!(pc.latched_count(0), 0x9999, "wraps in decimal");
    // Mode 2 with count 0 in BCD is a period of 10,000 clocks.
    pc.program(0, 0x35, 0);
    let start = 1001;
    pc.at_clock(start + 9_999);
    assert_eq!(pc.latched_count(0), 0x0001);
    pc.at_clock(start + 10_000);
    assert_eq!(pc.latched_count(0), 0x0000, "reloaded: 10000 reads as 0000");
    pc.at_clock(start + 10_001);
    assert_eq!(pc.latched_count(0), 0x9999);
}

#[test]
fn a_low_gate_holds_modes_2_and_3_and_its_rise_restarts_them() {
    let mut pc = Pc::new();
    pc.outb(0x61, 0);
    pc.program(2, 0xb4, 100);
    pc.at_clock(500);
    assert_eq!(pc.latched_count(2), 100, "not counting with the gate low");
    assert!(pc.out2());
    pc.outb(0x61, P61_GATE2);
    pc.at_clock(530);
    assert_eq!(pc.latched_count(2), 70);
    // Gate low: counting stops and OUT is high; the rise reloads.
    pc.outb(0x61, 0);
    pc.at_clock(600);
    assert_eq!(pc.latched_count(2), 70);
    pc.outb(0x61, P61_GATE2);
    pc.at_clock(610);
    assert_eq!(pc.latched_count(2), 90);
}

#[test]
fn a_low_gate_pauses_mode0() {
    let mut pc = Pc::new();
    pc.outb(0x61, P61_GATE2);
    pc.program(2, 0xb0, 100);
    pc.at_clock(60);
    pc.outb(0x61, 0);
    pc.at_clock(1000);
    assert_eq!(pc.latched_count(2), 40);
    assert!(!pc.out2());
    pc.outb(0x61, P61_GATE2);
    pc.at_clock(1039);
    assert!(!pc.out2());
    pc.at_clock(1040);
    assert!(pc.out2(), "the 100 clocks are counted across the pause");
}

#[test]
fn mode1_waits_for_a_gate_trigger_and_retriggers() {
    let mut pc = Pc::new();
    pc.outb(0x61, 0);
    pc.program(2, 0xb2, 50);
    pc.at_clock(200);
    assert!(pc.out2(), "no trigger yet");
    pc.outb(0x43, 0xe8);
    assert_eq!(pc.inb(0x42) & STATUS_NULL_COUNT, STATUS_NULL_COUNT);
    pc.outb(0x61, P61_GATE2);
    pc.at_clock(230);
    assert!(!pc.out2());
    assert_eq!(pc.latched_count(2), 20);
    // A new trigger reloads: 50 more clocks of low OUT.
    pc.outb(0x61, 0);
    pc.outb(0x61, P61_GATE2);
    pc.at_clock(279);
    assert!(!pc.out2());
    pc.at_clock(280);
    assert!(pc.out2());
}

#[test]
fn port61_refresh_toggles_with_time_and_keeps_its_enables() {
    let mut pc = Pc::new();
    pc.outb(0x61, 0xff);
    assert_eq!(pc.inb(0x61) & 0x0f, 0x0f, "gate, speaker and check enables");
    pc.outb(0x61, 0x0c);
    assert_eq!(pc.inb(0x61) & 0x0f, 0x0c);
    // The refresh bit flips every 18 input clocks (15 us), not on every read.
    let mut seen = Vec::new();
    for clock in [0, 17, 18, 35, 36, 54] {
        pc.at_clock(clock);
        let first = pc.inb(0x61) & P61_REFRESH;
        assert_eq!(pc.inb(0x61) & P61_REFRESH, first, "stable at clock {clock}");
        seen.push(first != 0);
    }
    assert_eq!(seen, [false, false, true, true, false, true]);
    // Reads wider than the port float high above it.
    assert_eq!(pc.port61.read(0, 2) & 0xff00, 0xff00);
}

#[test]
fn reset_leaves_counter0_as_qemu_does_and_state_round_trips() {
    let mut pc = Pc::new();
    // Out of reset, counter 0 runs mode 3 over 65536 clocks (18.2 Hz).
    let state = pc.pit.state();
    assert_eq!(state.counters[0].mode, 3);
    assert_eq!(state.counters[0].period, 0x1_0000);
    pc.at_clock(2);
    assert_eq!(pc.latched_count(0), 0xfffc);
    pc.program(0, 0x34, LINUX_LATCH);
    pc.outb(0x61, P61_GATE2 | P61_SPEAKER);
    pc.program(2, 0xb0, 4000);
    pc.at_clock(3000);
    pc.outb(0x43, 0x00);
    let saved = pc.ports.save_state();

    let mut other = Pc::new();
    other.at_clock(3000);
    other.ports.restore_state(&saved).unwrap();
    other.port61.restore_state(&pc.port61.save_state()).unwrap();
    assert_eq!(other.pit.state(), pc.pit.state());
    for clock in [3001, 5000, 7000] {
        pc.at_clock(clock);
        other.at_clock(clock);
        assert_eq!(other.inb(0x40), pc.inb(0x40));
        assert_eq!(other.inb(0x61), pc.inb(0x61));
        assert_eq!(other.latched_count(2), pc.latched_count(2));
    }
    pc.ports.reset();
    pc.port61.reset();
    let now = pc.clock.now();
    let state = pc.pit.state();
    let fresh = PitState::new(now);
    assert_eq!(
        (state.counters, state.port61),
        (fresh.counters, fresh.port61)
    );
    assert!(state.irq_level, "OUT 0 high at the start of mode 3");
    assert_eq!(pc.inb(0x61) & 0x0f, 0);
}

#[test]
fn restore_refuses_foreign_and_impossible_states() {
    let mut pc = Pc::new();
    assert_refuses_foreign_states(&mut pc.ports);
    assert_refuses_foreign_states(&mut pc.port61);
    let mut state = pc.pit.state();
    state.counters[1].period = 0;
    let bad = DeviceState::encode(KIND, VERSION, &state);
    assert!(matches!(
        pc.ports.restore_state(&bad),
        Err(StateError::Invalid { .. })
    ));
}

#[test]
fn counter0_interrupts_the_cpu_through_the_i8259() {
    let control = Arc::new(emu_core::RunControl::new());
    let pic = crate::I8259::new(control);
    let clock = Arc::new(VirtualClock::instruction_counted(NS, 1));
    let pit = I8254::new(clock.clone(), pic.input(0));
    let (mut master, mut pit_ports) = (pic.master_ports(), pit.ports());
    // Linux: PIC vectors 0x30, only IRQ 0 and the cascade open; PIT at 1 kHz.
    for (port, value) in [(0, 0x11), (1, 0x30), (1, 0x04), (1, 0x01), (1, 0xfa)] {
        master.write(port, 1, value);
    }
    pit_ports.write(3, 1, 0x34);
    pit_ports.write(0, 1, u32::from(LINUX_LATCH & 0xff));
    pit_ports.write(0, 1, u32::from(LINUX_LATCH >> 8));
    use emu_core::InterruptAcknowledge;
    let mut served = 0;
    let mut now = clock.now();
    while now < NS / 100 {
        if let Some(deadline) = pit_ports.tick(now) {
            clock.retire(deadline - now);
        }
        now = clock.now();
        if pic.interrupt_pending() {
            assert_eq!(pic.acknowledge(), Some(0x30));
            master.write(0, 1, 0x60);
            served += 1;
        }
    }
    assert_eq!(served, 10, "ten ticks in 10 ms");
}
