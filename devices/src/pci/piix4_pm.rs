//! The PIIX4 power-management function (82371AB function 3, 8086:7113), as
//! QEMU's `pc` has it at 00:01.3: its IDs, the PM I/O base register (PMBA at
//! 0x40) and its enable bit (PMIOSE, bit 0 of 0x80), which place the ACPI PM
//! registers ([`AcpiPm`]) in the port space where firmware chooses (SeaBIOS:
//! 0x600), and the SMBus base and host configuration registers firmware
//! writes (the SMBus controller itself is not modelled: its registers float).
//! The machine has no System Management Mode, so device activity B reports
//! the APM SMI as already set up, as QEMU's does without SMM; the APM control
//! port (0xB2) does what QEMU's SMI handler would for the ACPI enable and
//! disable commands the FADT names (0xF1, 0xF0): set or clear SCI_EN. The
//! APM status port (0xB3) is a scratch byte.

use serde::{Deserialize, Serialize};

use emu_core::{Device, DeviceState, PioDevice, StateError};

use super::config::{PciConfigSpace, PciConfigState, PciIds};
use super::i440fx::INTEL_VENDOR_ID;
use super::{PciFunction, host, window_offset};
use crate::acpi_pm::{self, AcpiPm};
use crate::state::invalid;

/// The 82371AB PIIX4 power-management function's device ID.
pub const PIIX4_PM_DEVICE_ID: u16 = 0x7113;
/// The PM I/O base register.
pub const PMBA_OFFSET: u16 = 0x40;
/// The PM register miscellaneous register; bit 0 (PMIOSE) enables PMBA.
pub const PMREGMISC_OFFSET: u16 = 0x80;
/// Device activity B (a dword): bit 25 enables SMIs on APM control writes.
pub const DEVACTB_OFFSET: u16 = 0x58;
/// The SMBus base address register.
pub const SMBBA_OFFSET: u16 = 0x90;
/// The SMBus host configuration register.
pub const SMBHSTCFG_OFFSET: u16 = 0xd2;
/// The window index [`PciFunction::decode_pio`] gives the PM registers (above
/// the six BARs).
pub const PM_WINDOW: usize = 6;
/// The window index of the APM control and status ports.
pub const APM_WINDOW: usize = 7;
/// The APM control port; status follows.
pub const APM_CONTROL_PORT: u16 = 0xb2;
/// The commands that enter and leave ACPI mode (the FADT's ACPI_ENABLE and
/// ACPI_DISABLE).
pub const ACPI_ENABLE: u8 = 0xf1;
/// See [`ACPI_ENABLE`].
pub const ACPI_DISABLE: u8 = 0xf0;
/// PMBA keeps bits 15:6: the block is 64 bytes, 64-byte aligned.
const PMBA_MASK: u32 = 0xffc0;

const KIND: &str = "piix4-pm";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Piix4PmState {
    config: PciConfigState,
    pm: DeviceState,
    apm: [u8; 2],
}

/// The PIIX4 PM function with its ACPI PM registers.
#[derive(Debug)]
pub struct Piix4Pm {
    config: PciConfigSpace,
    pm: AcpiPm,
    /// APM control and status.
    apm: [u8; 2],
}

impl Piix4Pm {
    /// The function at power-on, as QEMU resets it: PMBA unset (its I/O
    /// indicator bit reads 1), PM I/O disabled, interrupt pin INTA.
    pub fn new(pm: AcpiPm) -> Piix4Pm {
        let mut config = PciConfigSpace::new(PciIds {
            vendor_id: INTEL_VENDOR_ID,
            device_id: PIIX4_PM_DEVICE_ID,
            class_code: 0x06_8000,
            revision_id: 0x03,
            subsystem_vendor_id: host::QEMU_SUBSYSTEM_VENDOR_ID,
            subsystem_id: host::QEMU_SUBSYSTEM_ID,
        });
        config.set_interrupt_pin(1);
        // Status: fast back-to-back capable, medium DEVSEL timing.
        config.set_initial(0x06, &[0x80, 0x02]);
        config.set_initial(PMBA_OFFSET, &[0x01]);
        config.set_writable(PMBA_OFFSET, &[0xc0, 0xff]);
        config.set_writable(PMREGMISC_OFFSET, &[0x01]);
        // No SMM here: the APMC SMI is already enabled, which tells SeaBIOS
        // its SMM set-up was done (as QEMU does when SMM is off).
        config.set_initial(DEVACTB_OFFSET + 3, &[0x02]);
        config.set_initial(SMBBA_OFFSET, &[0x01]);
        config.set_writable(SMBBA_OFFSET, &[0xf0, 0xff]);
        config.set_initial(SMBHSTCFG_OFFSET, &[0x09]);
        config.set_writable(SMBHSTCFG_OFFSET, &[0x0f]);
        Piix4Pm {
            config,
            pm,
            apm: [0; 2],
        }
    }

    /// The first port of the PM registers, when PM I/O is enabled.
    pub fn pm_base(&self) -> Option<u16> {
        let enabled = self.config.get_u8(PMREGMISC_OFFSET) & 1 != 0;
        enabled.then(|| (self.config.get_u32(PMBA_OFFSET) & PMBA_MASK) as u16)
    }

    /// The ACPI PM registers (for a power button).
    pub fn pm(&mut self) -> &mut AcpiPm {
        &mut self.pm
    }
}

impl Device for Piix4Pm {
    fn reset(&mut self) {
        self.config.reset();
        self.pm.reset();
        self.apm = [0; 2];
    }

    fn save_state(&self) -> DeviceState {
        let state = Piix4PmState {
            config: self.config.state(),
            pm: self.pm.save_state(),
            apm: self.apm,
        };
        DeviceState::encode(KIND, VERSION, &state)
    }

    fn restore_state(&mut self, state: &DeviceState) -> Result<(), StateError> {
        let state: Piix4PmState = state.decode(KIND, VERSION)?;
        self.config
            .restore(&state.config)
            .map_err(|reason| invalid(KIND, reason))?;
        self.apm = state.apm;
        self.pm.restore_state(&state.pm)
    }
}

impl PciFunction for Piix4Pm {
    fn config(&self) -> &PciConfigSpace {
        &self.config
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32) {
        self.config.write(offset, size, value);
    }

    fn decode_pio(&self, port: u64, len: u64) -> Option<(usize, u64)> {
        let pm = self.pm_base().and_then(|base| {
            window_offset(port, len, u64::from(base), u64::from(acpi_pm::PORT_COUNT))
        });
        if let Some(into) = pm {
            return Some((PM_WINDOW, into));
        }
        if let Some(into) = window_offset(port, len, u64::from(APM_CONTROL_PORT), 2) {
            return Some((APM_WINDOW, into));
        }
        self.config.decode_pio(port, len)
    }

    fn bar_read(&mut self, bar: usize, offset: u64, size: u8) -> u64 {
        match bar {
            PM_WINDOW => u64::from(self.pm.read(offset as u16, size)),
            APM_WINDOW => {
                let bytes = &self.apm[offset as usize..];
                bytes
                    .iter()
                    .take(usize::from(size))
                    .rev()
                    .fold(0, |v, &b| v << 8 | u64::from(b))
            }
            _ => u64::MAX >> (64 - 8 * u32::from(size.clamp(1, 8))),
        }
    }

    fn bar_write(&mut self, bar: usize, offset: u64, size: u8, value: u64) {
        match bar {
            PM_WINDOW => self.pm.write(offset as u16, size, value as u32),
            APM_WINDOW => {
                for (k, slot) in (offset as usize..2).take(usize::from(size)).enumerate() {
                    let byte = (value >> (8 * k)) as u8;
                    self.apm[slot] = byte;
                    if slot == 0 {
                        match byte {
                            ACPI_ENABLE => self.pm.set_sci_enabled(true),
                            ACPI_DISABLE => self.pm.set_sci_enabled(false),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn tick(&mut self, now: u64) -> Option<u64> {
        PioDevice::tick(&mut self.pm, now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use emu_core::{RunControl, StopReason};

    use super::*;

    fn function() -> (Piix4Pm, Arc<AtomicU64>, Arc<RunControl>) {
        let ticks = Arc::new(AtomicU64::new(0));
        let control = Arc::new(RunControl::new());
        let clock = ticks.clone();
        let pm = AcpiPm::new(
            Box::new(move || clock.load(Ordering::SeqCst)),
            acpi_pm::PM_TIMER_HZ,
            control.clone(),
            None,
        );
        (Piix4Pm::new(pm), ticks, control)
    }

    #[test]
    fn ids_are_qemus() {
        let (mut f, _, _) = function();
        assert_eq!(f.config_read(0, 4), 0x7113_8086);
        assert_eq!(f.config_read(8, 4), 0x0680_0003);
        assert_eq!(f.config_read(0x3d, 1), 1);
        assert_eq!(f.config_read(PMBA_OFFSET, 4), 1);
        assert_ne!(f.config_read(DEVACTB_OFFSET, 4) & 1 << 25, 0);
    }

    #[test]
    fn pm_registers_appear_where_firmware_puts_them() {
        let (mut f, ticks, control) = function();
        assert_eq!(f.decode_pio(0x608, 4), None, "PM I/O starts disabled");
        // SeaBIOS's piix4_pm_setup: PMBA = 0x600, then PMIOSE.
        f.config_write(PMBA_OFFSET, 4, 0x600);
        assert_eq!(f.config_read(PMBA_OFFSET, 4), 0x601);
        assert_eq!(f.decode_pio(0x608, 4), None);
        f.config_write(PMREGMISC_OFFSET, 1, 1);
        assert_eq!(f.pm_base(), Some(0x600));
        assert_eq!(f.decode_pio(0x608, 4), Some((PM_WINDOW, 8)));
        assert_eq!(f.decode_pio(0x63e, 4), None, "runs past the block");
        ticks.store(1234, Ordering::SeqCst);
        assert_eq!(f.bar_read(PM_WINDOW, 8, 4), 1234);
        // S5 through PM1 control (SLP_TYP 0, SLP_EN) powers off.
        f.bar_write(PM_WINDOW, 4, 2, 1 << 13);
        assert_eq!(control.stop_reason(), Some(StopReason::PowerOff(0)));
        f.reset();
        assert_eq!(f.pm_base(), None);
    }

    #[test]
    fn the_apm_port_enters_and_leaves_acpi_mode() {
        let (mut f, _, _) = function();
        f.config_write(PMBA_OFFSET, 4, 0x600);
        f.config_write(PMREGMISC_OFFSET, 1, 1);
        assert_eq!(f.decode_pio(0xb2, 1), Some((APM_WINDOW, 0)));
        assert_eq!(f.decode_pio(0xb3, 1), Some((APM_WINDOW, 1)));
        // PM1 control's SCI_EN (bit 0) follows the FADT's commands.
        assert_eq!(f.bar_read(PM_WINDOW, 4, 2) & 1, 0);
        f.bar_write(APM_WINDOW, 0, 1, u64::from(ACPI_ENABLE));
        assert_eq!(f.bar_read(PM_WINDOW, 4, 2) & 1, 1);
        assert_eq!(f.bar_read(APM_WINDOW, 0, 1), u64::from(ACPI_ENABLE));
        f.bar_write(APM_WINDOW, 1, 1, 0x5a);
        assert_eq!(f.bar_read(APM_WINDOW, 0, 2), 0x5af1);
        f.bar_write(APM_WINDOW, 0, 1, u64::from(ACPI_DISABLE));
        assert_eq!(f.bar_read(PM_WINDOW, 4, 2) & 1, 0);
    }

    #[test]
    fn state_round_trips() {
        let (mut f, _, _) = function();
        f.config_write(PMBA_OFFSET, 4, 0xb000);
        f.config_write(PMREGMISC_OFFSET, 1, 1);
        f.bar_write(PM_WINDOW, 2, 2, 1);
        let saved = f.save_state();
        let (mut g, _, _) = function();
        g.restore_state(&saved).unwrap();
        assert_eq!(g.pm_base(), Some(0xb000));
        assert_eq!(g.bar_read(PM_WINDOW, 2, 2), 1);
    }
}
