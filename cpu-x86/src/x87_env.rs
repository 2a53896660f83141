//! The x87's state as memory sees it: the control word's rules, the
//! environment FSTENV and FLDENV move (in the real-address and protected
//! layouts, 14 or 28 bytes), and the x87 part of an FXSAVE image.

use crate::cpu::{Cpu, Fault};
use crate::decode::{Insn, Operand};
use crate::flags::mask;
use crate::state::{cr0, fsw};
use crate::x87::tag_word;

impl Cpu {
    /// FLDCW and FRSTOR's control word: bit 6 reads as one; an unmasked
    /// pending exception sets ES.
    pub(crate) fn set_control_word(&mut self, v: u16) {
        let x87 = &mut self.state.x87;
        x87.fcw = (v & 0x1f3f) | 0x40;
        if x87.fsw & !x87.fcw & fsw::EXCEPTIONS != 0 {
            x87.fsw |= fsw::ES | fsw::B;
        } else {
            x87.fsw &= !(fsw::ES | fsw::B);
        }
    }

    /// The size of the FSTENV image: 14 bytes with a 16-bit operand size, 28
    /// otherwise.
    pub(crate) fn environment_size(&self, i: &Insn) -> u64 {
        if matches!(i.operands[0], Operand::Mem(14 | 94)) {
            14
        } else {
            28
        }
    }

    fn protected_layout(&self) -> bool {
        self.state.cr0 & cr0::PE != 0 && self.state.rflags & crate::state::flags::VM == 0
    }

    /// Writes the environment (control, status and tag words and the last
    /// instruction's pointers) in the layout of the mode and operand size;
    /// returns its size.
    pub(crate) fn store_environment(&mut self, i: &Insn) -> Result<u64, Fault> {
        let size = self.environment_size(i);
        let x87 = self.state.x87.clone();
        let tags = tag_word(&x87);
        let words: [u64; 7] = if self.protected_layout() {
            [
                u64::from(x87.fcw),
                u64::from(x87.status_word()),
                u64::from(tags),
                x87.fip & 0xffff_ffff,
                u64::from(x87.fcs) | (u64::from(x87.fop) << 16),
                x87.fdp & 0xffff_ffff,
                u64::from(x87.fds),
            ]
        } else {
            // Real-address layout: 20-bit linear pointers split in two.
            let ip = x87.fip.wrapping_add(u64::from(x87.fcs) << 4) & 0xffff_ffff;
            let dp = x87.fdp.wrapping_add(u64::from(x87.fds) << 4) & 0xffff_ffff;
            [
                u64::from(x87.fcw),
                u64::from(x87.status_word()),
                u64::from(tags),
                ip & 0xffff,
                ((ip >> 16) << 12) | u64::from(x87.fop),
                dp & 0xffff,
                (dp >> 16) << 12,
            ]
        };
        let ea = self.effective_address(i);
        let slot = if size == 14 { 2 } else { 4 };
        self.linear(i.seg, ea, size as u8, crate::mmu::Access::Write)?;
        for (k, w) in words.into_iter().enumerate() {
            let at = ea.wrapping_add(slot * k as u64) & mask(i.addr_size);
            self.write(i.seg, at, slot as u8, w & mask(slot as u8))?;
        }
        Ok(size)
    }

    pub(crate) fn load_environment(&mut self, i: &Insn) -> Result<(), Fault> {
        let size = self.environment_size(i);
        let ea = self.effective_address(i);
        let slot = if size == 14 { 2 } else { 4 };
        let mut words = [0u64; 7];
        for (k, w) in words.iter_mut().enumerate() {
            let at = ea.wrapping_add(slot * k as u64) & mask(i.addr_size);
            *w = self.read(i.seg, at, slot as u8)?;
        }
        let protected = self.protected_layout();
        let x87 = &mut self.state.x87;
        x87.set_status_word(words[1] as u16);
        let tags = words[2] as u16;
        x87.used = (0..8).fold(0, |u, n| {
            if (tags >> (2 * n)) & 3 == 3 {
                u
            } else {
                u | (1 << n)
            }
        });
        if protected {
            x87.fip = words[3];
            x87.fcs = words[4] as u16;
            x87.fop = ((words[4] >> 16) & 0x7ff) as u16;
            x87.fdp = words[5];
            x87.fds = words[6] as u16;
        } else {
            x87.fip = (words[3] & 0xffff) | ((words[4] >> 12) << 16);
            x87.fop = (words[4] & 0x7ff) as u16;
            x87.fcs = 0;
            x87.fdp = (words[5] & 0xffff) | ((words[6] >> 12) << 16);
            x87.fds = 0;
        }
        self.set_control_word(words[0] as u16);
        Ok(())
    }

    /// The x87 part of an FXSAVE image (bytes 0–31 and the registers at
    /// 32–159), as `(offset, size, value)` stores.
    pub(crate) fn fxsave_x87(&self, wide_pointers: bool) -> Vec<(u64, u8, u64)> {
        let x87 = &self.state.x87;
        let mut out = vec![
            (0, 2, u64::from(x87.fcw)),
            (2, 2, u64::from(x87.status_word())),
            (4, 1, u64::from(x87.used)),
            (6, 2, u64::from(x87.fop)),
        ];
        if wide_pointers {
            out.push((8, 8, x87.fip));
            out.push((16, 8, x87.fdp));
        } else {
            out.push((8, 4, x87.fip & 0xffff_ffff));
            out.push((12, 2, u64::from(x87.fcs)));
            out.push((16, 4, x87.fdp & 0xffff_ffff));
            out.push((20, 2, u64::from(x87.fds)));
        }
        for k in 0..8u8 {
            let v = x87.regs[usize::from((x87.top + k) & 7)];
            out.push((32 + 16 * u64::from(k), 8, v as u64));
            out.push((40 + 16 * u64::from(k), 8, (v >> 64) as u64 & 0xffff));
        }
        out
    }

    /// Takes the x87 part of an FXRSTOR image (`bytes` holds offsets 0–159).
    pub(crate) fn fxrstor_x87(&mut self, bytes: &[u8; 160], wide_pointers: bool) {
        let word = |k: usize| u16::from_le_bytes([bytes[k], bytes[k + 1]]);
        let quad = |k: usize| u64::from_le_bytes(bytes[k..k + 8].try_into().expect("8 bytes"));
        let dword = |k: usize| {
            u64::from(u32::from_le_bytes(
                bytes[k..k + 4].try_into().expect("4 bytes"),
            ))
        };
        let x87 = &mut self.state.x87;
        x87.set_status_word(word(2));
        x87.used = bytes[4];
        x87.fop = word(6) & 0x7ff;
        if wide_pointers {
            x87.fip = quad(8);
            x87.fdp = quad(16);
        } else {
            x87.fip = dword(8);
            x87.fcs = word(12);
            x87.fdp = dword(16);
            x87.fds = word(20);
        }
        let top = x87.top;
        for k in 0..8usize {
            let v = u128::from(quad(32 + 16 * k)) | (u128::from(word(40 + 16 * k)) << 64);
            x87.regs[(usize::from(top) + k) & 7] = v;
        }
        self.set_control_word(word(0));
    }
}
