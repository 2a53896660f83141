use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::pc_layout::{FloppyDrive, PcRamSplit};
use super::*;
use crate::testing::{TestIrq, assert_refuses_foreign_states};

const SECOND: u64 = 1_000_000_000;
/// 2024-02-29 13:45:07 UTC, a Thursday.
const LEAP_DAY: u64 = 1_709_214_307;

/// A settable clock in nanoseconds since the epoch.
#[derive(Clone)]
struct Clock(Arc<AtomicU64>);

impl Clock {
    fn at(seconds: u64) -> Clock {
        Clock(Arc::new(AtomicU64::new(seconds * SECOND)))
    }
    fn source(&self) -> TimeSource {
        let clock = self.0.clone();
        Box::new(move || clock.load(Ordering::SeqCst))
    }
    fn set(&self, ns: u64) {
        self.0.store(ns, Ordering::SeqCst);
    }
    fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

fn rtc_at(seconds: u64) -> (Mc146818, Clock, TestIrq) {
    let clock = Clock::at(seconds);
    let mut rtc = Mc146818::new(clock.source());
    let irq = TestIrq::default();
    rtc.set_irq(Box::new(irq.clone()));
    (rtc, clock, irq)
}

fn read(rtc: &mut Mc146818, index: u8) -> u8 {
    rtc.write(INDEX_PORT, 1, u32::from(index));
    rtc.read(DATA_PORT, 1) as u8
}

fn write(rtc: &mut Mc146818, index: u8, value: u8) {
    rtc.write(INDEX_PORT, 1, u32::from(index));
    rtc.write(DATA_PORT, 1, u32::from(value));
}

/// Seconds, minutes, hours, day of week, date, month, year, century.
fn time_registers(rtc: &mut Mc146818) -> [u8; 8] {
    [
        REG_SECONDS,
        REG_MINUTES,
        REG_HOURS,
        REG_DAY_OF_WEEK,
        REG_DAY_OF_MONTH,
        REG_MONTH,
        REG_YEAR,
        REG_CENTURY,
    ]
    .map(|index| read(rtc, index))
}

#[test]
fn time_reads_in_bcd_then_binary() {
    let (mut rtc, _, _) = rtc_at(LEAP_DAY);
    assert_eq!(read(&mut rtc, REG_A), POWER_ON_A);
    assert_eq!(read(&mut rtc, REG_B), POWER_ON_B);
    assert_eq!(
        time_registers(&mut rtc),
        [0x07, 0x45, 0x13, 5, 0x29, 0x02, 0x24, 0x20]
    );
    write(&mut rtc, REG_B, B_24H | B_BINARY);
    assert_eq!(time_registers(&mut rtc), [7, 45, 13, 5, 29, 2, 24, 20]);
}

#[test]
fn twelve_hour_mode_marks_pm_in_bit_7() {
    // (time of day, BCD hours byte, binary hours byte)
    let cases = [
        (1_709_166_600, 0x12, 12),        // 00:30 is 12 AM
        (LEAP_DAY, 0x81, 0x81),           // 13:45 is 1 PM
        (1_709_208_900, 0x92, 0x8c),      // 12:15 is 12 PM
        (1_709_247_900, 0x91, 0x80 | 11), // 23:05 is 11 PM
    ];
    for (seconds, bcd, binary) in cases {
        let (mut rtc, _, _) = rtc_at(seconds);
        write(&mut rtc, REG_B, 0);
        assert_eq!(read(&mut rtc, REG_HOURS), bcd, "BCD at {seconds}");
        write(&mut rtc, REG_B, B_BINARY);
        assert_eq!(read(&mut rtc, REG_HOURS), binary, "binary at {seconds}");
    }
}

#[test]
fn time_written_under_set_runs_from_when_set_clears() {
    let (mut rtc, clock, _) = rtc_at(LEAP_DAY);
    write(&mut rtc, REG_B, B_SET | B_24H | B_UIE);
    assert_eq!(read(&mut rtc, REG_B), B_SET | B_24H, "SET clears UIE");
    // 1999-12-31 23:59:58, a Friday.
    for (index, value) in [
        (REG_SECONDS, 0x58),
        (REG_MINUTES, 0x59),
        (REG_HOURS, 0x23),
        (REG_DAY_OF_MONTH, 0x31),
        (REG_MONTH, 0x12),
        (REG_YEAR, 0x99),
        (REG_CENTURY, 0x19),
    ] {
        write(&mut rtc, index, value);
    }
    // Stopped: the source runs on, the registers do not.
    clock.advance(5 * SECOND);
    assert_eq!(read(&mut rtc, REG_SECONDS), 0x58);
    assert_eq!(read(&mut rtc, REG_A) & A_UIP, 0, "no updates while SET");
    write(&mut rtc, REG_B, B_24H);
    assert_eq!(read(&mut rtc, REG_SECONDS), 0x58);
    clock.advance(3 * SECOND);
    // Over the century: 2000-01-01 00:00:01, a Saturday.
    assert_eq!(
        time_registers(&mut rtc),
        [0x01, 0x00, 0x00, 7, 0x01, 0x01, 0x00, 0x20]
    );
    // A write while running edits the running time (the minutes here).
    write(&mut rtc, REG_MINUTES, 0x30);
    clock.advance(SECOND);
    assert_eq!(read(&mut rtc, REG_MINUTES), 0x30);
    assert_eq!(read(&mut rtc, REG_SECONDS), 0x02);
}

#[test]
fn a_12_hour_time_written_in_binary_is_read_back() {
    let (mut rtc, clock, _) = rtc_at(LEAP_DAY);
    write(&mut rtc, REG_B, B_SET | B_BINARY);
    write(&mut rtc, REG_HOURS, HOUR_PM | 12); // 12 PM is noon
    write(&mut rtc, REG_MINUTES, 0);
    write(&mut rtc, REG_SECONDS, 59);
    write(&mut rtc, REG_B, B_BINARY | B_24H);
    clock.advance(SECOND);
    assert_eq!(read(&mut rtc, REG_HOURS), 12);
    assert_eq!(read(&mut rtc, REG_MINUTES), 1);
}

#[test]
fn a_polling_reader_sees_uip_before_each_update() {
    // One millisecond before a second ends; each poll takes 1 µs of clock.
    let (mut rtc, clock, _) = rtc_at(LEAP_DAY);
    clock.advance(SECOND - 1_000_000);
    let before = read(&mut rtc, REG_SECONDS);
    assert_eq!(before, 0x07);
    let mut polls = 0;
    let mut high_polls = 0;
    let mut seconds_while_high = Vec::new();
    // Wait for UIP to rise, then to fall, as firmware does before reading.
    let mut seen_high = false;
    loop {
        polls += 1;
        assert!(polls < 5_000, "UIP never rose and fell");
        let uip = read(&mut rtc, REG_A) & A_UIP != 0;
        if uip {
            seen_high = true;
            high_polls += 1;
            seconds_while_high.push(read(&mut rtc, REG_SECONDS));
        } else if seen_high {
            break;
        }
        clock.advance(1_000);
    }
    // The window is 244 µs long and ends at the update.
    assert!(
        (240..=250).contains(&high_polls),
        "{high_polls} polls saw UIP"
    );
    assert!(seconds_while_high.iter().all(|&s| s == 0x07));
    assert_eq!(read(&mut rtc, REG_SECONDS), 0x08);
}

#[test]
fn register_c_reports_flags_once_and_drops_the_line() {
    let (mut rtc, clock, irq) = rtc_at(LEAP_DAY);
    write(&mut rtc, REG_B, B_24H | B_UIE);
    assert_eq!(rtc.tick(0), Some(SECOND), "next update in one second");
    assert!(!irq.level());
    clock.advance(SECOND);
    rtc.tick(SECOND);
    assert!(irq.level());
    assert_eq!(read(&mut rtc, REG_C), C_IRQF | C_UF);
    assert!(!irq.level());
    assert_eq!(read(&mut rtc, REG_C), 0, "cleared by the first read");
    // UF is kept with UIE off, but raises nothing until UIE is enabled.
    write(&mut rtc, REG_B, B_24H);
    clock.advance(SECOND);
    rtc.tick(2 * SECOND);
    assert!(!irq.level());
    write(&mut rtc, REG_B, B_24H | B_UIE);
    assert!(irq.level(), "enabling a pending flag raises the line");
    // Register C and D are read-only; D reports a good battery.
    write(&mut rtc, REG_C, 0);
    assert_eq!(read(&mut rtc, REG_C), C_IRQF | C_UF);
    write(&mut rtc, REG_D, 0);
    assert_eq!(read(&mut rtc, REG_D), D_VRT);
}

/// Runs `rtc` from virtual time 0 to `until` on its own deadlines,
/// acknowledging each interrupt; returns how many there were.
fn count_interrupts(rtc: &mut Mc146818, irq: &TestIrq, until: u64) -> u32 {
    let mut now = 0;
    let mut count = 0;
    while now <= until {
        let next = rtc.tick(now).expect("a periodic deadline");
        assert!(next > now, "deadline {next} not after {now}");
        if irq.level() {
            count += 1;
            assert_eq!(read(rtc, REG_C) & (C_IRQF | C_PF), C_IRQF | C_PF);
        }
        now = next;
    }
    count
}

#[test]
fn periodic_interrupts_come_at_the_selected_rate() {
    let (mut rtc, _, irq) = rtc_at(LEAP_DAY);
    // Rate 6 (the power-on value) is 1024 Hz; nothing without PIE.
    assert_eq!(rtc.tick(0), None);
    write(&mut rtc, REG_B, B_24H | B_PIE);
    assert_eq!(rtc.tick(0), Some(976_563), "1/1024 s, rounded up");
    assert_eq!(count_interrupts(&mut rtc, &irq, SECOND), 1024);

    // Rate 15 is 2 Hz, rate 3 8192 Hz, rate 1 256 Hz.
    for (rate, hz) in [(15, 2), (3, 8192), (1, 256)] {
        let (mut rtc, _, irq) = rtc_at(LEAP_DAY);
        write(&mut rtc, REG_A, 0x20 | rate);
        write(&mut rtc, REG_B, B_24H | B_PIE);
        assert_eq!(count_interrupts(&mut rtc, &irq, SECOND), hz, "rate {rate}");
    }
}

#[test]
fn periodic_periods_missed_while_disabled_do_not_fire() {
    let (mut rtc, _, irq) = rtc_at(LEAP_DAY);
    rtc.tick(10 * SECOND);
    write(&mut rtc, REG_B, B_24H | B_PIE);
    let next = rtc.tick(10 * SECOND).unwrap();
    assert!(!irq.level());
    assert!(next > 10 * SECOND && next <= 10 * SECOND + 976_563);
    rtc.tick(next);
    assert!(irq.level());
}

#[test]
fn the_alarm_fires_when_the_clock_matches() {
    let (mut rtc, clock, irq) = rtc_at(LEAP_DAY);
    // 13:45:10, in BCD like the clock.
    write(&mut rtc, REG_HOURS_ALARM, 0x13);
    write(&mut rtc, REG_MINUTES_ALARM, 0x45);
    write(&mut rtc, REG_SECONDS_ALARM, 0x10);
    write(&mut rtc, REG_B, B_24H | B_AIE);
    for (offset, fired) in [(1, false), (2, false), (3, true)] {
        clock.set((LEAP_DAY + offset) * SECOND);
        rtc.tick(offset * SECOND);
        assert_eq!(irq.level(), fired, "at 13:45:{:02}", 7 + offset);
    }
    // UF came along each second but is not enabled.
    assert_eq!(read(&mut rtc, REG_C), C_IRQF | C_AF | C_UF);
    assert!(!irq.level());

    // Hours and minutes don't care: the next :30 seconds, 20 seconds on.
    write(&mut rtc, REG_HOURS_ALARM, 0xff);
    write(&mut rtc, REG_MINUTES_ALARM, 0xc0);
    write(&mut rtc, REG_SECONDS_ALARM, 0x30);
    clock.set((LEAP_DAY + 22) * SECOND);
    rtc.tick(0);
    assert!(!irq.level(), "13:45:29");
    clock.set((LEAP_DAY + 23) * SECOND);
    rtc.tick(0);
    assert!(irq.level(), "13:45:30");
    read(&mut rtc, REG_C);

    // An alarm second passed while nobody looked still counts.
    write(&mut rtc, REG_SECONDS_ALARM, 0x00);
    write(&mut rtc, REG_MINUTES_ALARM, 0x00);
    write(&mut rtc, REG_HOURS_ALARM, 0x14);
    clock.set((LEAP_DAY + 7200) * SECOND);
    rtc.tick(0);
    assert!(irq.level(), "14:00:00 passed on the way to 15:45");
}

#[test]
fn the_divider_in_reset_stops_the_clock_and_restarts_half_a_second_in() {
    let (mut rtc, clock, _) = rtc_at(LEAP_DAY);
    write(&mut rtc, REG_A, 0x70 | 6);
    clock.advance(10 * SECOND);
    assert_eq!(read(&mut rtc, REG_SECONDS), 0x07);
    write(&mut rtc, REG_A, 0x26);
    assert_eq!(read(&mut rtc, REG_A), 0x26, "UIP is not writable");
    clock.advance(SECOND / 2 - 1);
    assert_eq!(read(&mut rtc, REG_SECONDS), 0x07);
    clock.advance(1);
    assert_eq!(read(&mut rtc, REG_SECONDS), 0x08);
}

#[test]
fn index_port_masks_the_index_and_keeps_the_nmi_bit() {
    let (mut rtc, _, _) = rtc_at(LEAP_DAY);
    rtc.set_byte(0x34, 0x5a);
    rtc.write(INDEX_PORT, 1, 0x80 | 0x34);
    assert!(rtc.nmi_disabled());
    assert_eq!(rtc.read(DATA_PORT, 1), 0x5a);
    rtc.write(INDEX_PORT, 1, 0x34);
    assert!(!rtc.nmi_disabled());
    assert_eq!(
        rtc.read(INDEX_PORT, 1),
        0xff,
        "the index port is write-only"
    );
    rtc.write(DATA_PORT, 1, 0xa5);
    assert_eq!(rtc.byte(0x34), 0xa5);
}

#[test]
fn reset_clears_interrupts_but_keeps_memory_and_clock() {
    let (mut rtc, clock, irq) = rtc_at(LEAP_DAY);
    rtc.set_byte(pc_layout::SHUTDOWN_STATUS, 0x0a);
    write(&mut rtc, REG_B, B_SET | B_BINARY | B_24H);
    write(&mut rtc, REG_YEAR, 30);
    write(
        &mut rtc,
        REG_B,
        B_BINARY | B_24H | B_PIE | B_AIE | B_UIE | B_SQWE,
    );
    clock.advance(SECOND);
    rtc.tick(SECOND);
    assert!(irq.level());
    rtc.reset();
    assert!(!irq.level());
    assert_eq!(read(&mut rtc, REG_B), B_BINARY | B_24H);
    assert_eq!(read(&mut rtc, REG_C), 0);
    assert_eq!(rtc.byte(pc_layout::SHUTDOWN_STATUS), 0x0a);
    assert_eq!(read(&mut rtc, REG_YEAR), 30);
}

#[test]
fn state_round_trips_into_a_fresh_rtc() {
    let (mut a, clock, irq_a) = rtc_at(LEAP_DAY);
    a.set_byte(0x40, 0x77);
    write(&mut a, REG_B, B_SET | B_24H);
    write(&mut a, REG_YEAR, 0x42);
    write(&mut a, REG_B, B_24H | B_UIE | B_PIE);
    clock.advance(SECOND);
    a.tick(SECOND);
    write(&mut a, REG_MINUTES, 0x10); // leaves the index at REG_MINUTES
    assert!(irq_a.level());

    let mut b = Mc146818::new(clock.source());
    let irq_b = TestIrq::default();
    b.set_irq(Box::new(irq_b.clone()));
    let saved = a.save_state();
    b.restore_state(&saved).unwrap();
    assert_eq!(b.save_state(), saved);
    assert!(irq_b.level());
    assert_eq!(b.read(DATA_PORT, 1), 0x10);
    assert_eq!(time_registers(&mut a), time_registers(&mut b));
    assert_eq!(read(&mut b, REG_YEAR), 0x42);
    assert_eq!(b.byte(0x40), 0x77);
    // Both run on to the same next periodic deadline.
    assert_eq!(a.tick(SECOND + 1), b.tick(SECOND + 1));

    let mut bad = saved.clone();
    bad.data["memory"] = serde_json::json!("00");
    assert!(matches!(
        b.restore_state(&bad),
        Err(StateError::Invalid { .. })
    ));
    assert_refuses_foreign_states(&mut b);
}

#[test]
fn garbage_in_the_time_registers_does_not_panic() {
    let (mut rtc, clock, _) = rtc_at(LEAP_DAY);
    write(&mut rtc, REG_B, B_SET);
    for index in [
        REG_SECONDS,
        REG_MINUTES,
        REG_HOURS,
        REG_DAY_OF_MONTH,
        REG_MONTH,
        REG_YEAR,
        REG_CENTURY,
    ] {
        write(&mut rtc, index, 0xff);
    }
    write(&mut rtc, REG_B, 0);
    clock.advance(3 * SECOND);
    rtc.tick(3 * SECOND);
    let _ = time_registers(&mut rtc);
    write(&mut rtc, REG_B, B_BINARY | B_24H);
    let _ = time_registers(&mut rtc);
}

#[test]
fn calendar_conversions_agree_across_eras() {
    for days in (-800_000..800_000).step_by(997) {
        let (year, month, day) = civil_from_days(days);
        assert_eq!(
            days_from_civil(year, u32::from(month), i64::from(day)),
            days
        );
    }
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(civil_from_days(19_782), (2024, 2, 29));
}

/// The memory bytes QEMU 8's `pc` machine sets, read with a probe BIOS that
/// dumps CMOS to the debug console:
/// `qemu-system-x86_64 -M pc -m SIZE -smp 2 -nodefaults -bios probe.bin
/// -debugcon file:out.bin -device isa-debug-exit`. Columns: RAM size, then
/// bytes 0x15-0x18, 0x30-0x31, 0x34-0x35, 0x5b-0x5d.
const QEMU_MEMORY_BYTES: [(u64, [u8; 11]); 9] = [
    (2 << 20, [0x80, 0x02, 0x00, 0x04, 0x00, 0x04, 0, 0, 0, 0, 0]),
    (
        16 << 20,
        [0x80, 0x02, 0x00, 0x3c, 0x00, 0x3c, 0, 0, 0, 0, 0],
    ),
    (
        20 << 20,
        [0x80, 0x02, 0x00, 0x4c, 0x00, 0x4c, 0x40, 0x00, 0, 0, 0],
    ),
    (
        128 << 20,
        [0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0x07, 0, 0, 0],
    ),
    (
        1 << 30,
        [0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0x3f, 0, 0, 0],
    ),
    (
        3583 << 20,
        [0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0xf0, 0xde, 0, 0, 0],
    ),
    (
        3584 << 20,
        [
            0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xbf, 0x00, 0x20, 0x00,
        ],
    ),
    (
        4 << 30,
        [
            0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xbf, 0x00, 0x40, 0x00,
        ],
    ),
    (
        8 << 30,
        [
            0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xbf, 0x00, 0x40, 0x01,
        ],
    ),
];

#[test]
fn memory_bytes_match_qemu_pc() {
    let indices = [
        0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35, 0x5b, 0x5c, 0x5d,
    ];
    for (size, expected) in QEMU_MEMORY_BYTES {
        let (mut rtc, _, _) = rtc_at(LEAP_DAY);
        rtc.set_pc_memory(PcRamSplit::for_ram_size(size));
        let got = indices.map(|i| read(&mut rtc, i));
        assert_eq!(got, expected, "{size:#x} bytes of RAM");
    }
    assert_eq!(
        PcRamSplit::for_ram_size(4 << 30),
        PcRamSplit {
            below_4g: 3 << 30,
            above_4g: 1 << 30
        }
    );
}

#[test]
fn boot_order_cpus_and_floppies_match_qemu_pc() {
    // QEMU's defaults, read with the same probe: order "cad" with the
    // floppy signature check, two CPUs, no floppy drives.
    let (mut rtc, _, _) = rtc_at(LEAP_DAY);
    rtc.set_pc_boot_order("cad", true).unwrap();
    rtc.set_pc_cpu_count(2);
    rtc.set_pc_floppy_drives([None, None]);
    assert_eq!(read(&mut rtc, pc_layout::BOOT_ORDER_FIRST), 0x12);
    assert_eq!(read(&mut rtc, pc_layout::BOOT_ORDER_THIRD), 0x30);
    assert_eq!(read(&mut rtc, pc_layout::CPU_COUNT_MINUS_ONE), 0x01);
    assert_eq!(read(&mut rtc, pc_layout::EQUIPMENT), 0x06);
    assert_eq!(read(&mut rtc, pc_layout::FLOPPY_TYPES), 0x00);

    rtc.set_pc_boot_order("n", false).unwrap();
    assert_eq!(rtc.byte(pc_layout::BOOT_ORDER_FIRST), 0x04);
    assert_eq!(rtc.byte(pc_layout::BOOT_ORDER_THIRD), 0x01);
    assert!(rtc.set_pc_boot_order("cadn", true).is_err());
    assert!(rtc.set_pc_boot_order("cx", true).is_err());

    rtc.set_pc_floppy_drives([Some(FloppyDrive::Size1440K), None]);
    assert_eq!(rtc.byte(pc_layout::FLOPPY_TYPES), 0x40);
    assert_eq!(rtc.byte(pc_layout::EQUIPMENT), 0x07);
    rtc.set_pc_floppy_drives([Some(FloppyDrive::Size2880K), Some(FloppyDrive::Size1200K)]);
    assert_eq!(rtc.byte(pc_layout::FLOPPY_TYPES), 0x52);
    assert_eq!(rtc.byte(pc_layout::EQUIPMENT), 0x47);
}
