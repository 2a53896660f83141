//! The architectural state of one x86 CPU, laid out for the interpreter and a
//! later translator alike (`#[repr(C)]`, plain integers).

/// General-purpose register numbers in the order of the instruction encoding.
pub mod gpr {
    /// AX / EAX / RAX.
    pub const AX: usize = 0;
    /// CX / ECX / RCX.
    pub const CX: usize = 1;
    /// DX / EDX / RDX.
    pub const DX: usize = 2;
    /// BX / EBX / RBX.
    pub const BX: usize = 3;
    /// SP / ESP / RSP.
    pub const SP: usize = 4;
    /// BP / EBP / RBP.
    pub const BP: usize = 5;
    /// SI / ESI / RSI.
    pub const SI: usize = 6;
    /// DI / EDI / RDI.
    pub const DI: usize = 7;
    /// R11 (SYSCALL keeps RFLAGS there).
    pub const R11: usize = 11;
}

/// The segment registers, numbered as in the instruction encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SegReg {
    /// Extra segment.
    Es = 0,
    /// Code segment.
    Cs = 1,
    /// Stack segment.
    Ss = 2,
    /// Data segment.
    Ds = 3,
    /// FS (386 and later).
    Fs = 4,
    /// GS (386 and later).
    Gs = 5,
}

impl SegReg {
    /// Every segment register, in encoding order.
    pub const ALL: [SegReg; 6] = [
        SegReg::Es,
        SegReg::Cs,
        SegReg::Ss,
        SegReg::Ds,
        SegReg::Fs,
        SegReg::Gs,
    ];

    /// The register with encoding `n` (0–5).
    pub fn from_index(n: u8) -> Option<SegReg> {
        SegReg::ALL.get(usize::from(n)).copied()
    }
}

/// RFLAGS bits.
pub mod flags {
    /// Carry.
    pub const CF: u64 = 1 << 0;
    /// Always one.
    pub const FIXED1: u64 = 1 << 1;
    /// Parity of the low result byte.
    pub const PF: u64 = 1 << 2;
    /// Carry out of bit 3 (BCD).
    pub const AF: u64 = 1 << 4;
    /// Zero.
    pub const ZF: u64 = 1 << 6;
    /// Sign.
    pub const SF: u64 = 1 << 7;
    /// Single-step trap.
    pub const TF: u64 = 1 << 8;
    /// Interrupts enabled.
    pub const IF: u64 = 1 << 9;
    /// String direction (set: decrement).
    pub const DF: u64 = 1 << 10;
    /// Signed overflow.
    pub const OF: u64 = 1 << 11;
    /// I/O privilege level (two bits).
    pub const IOPL: u64 = 3 << 12;
    /// Nested task.
    pub const NT: u64 = 1 << 14;
    /// Bit 15: one on the 8086, zero later.
    pub const BIT15: u64 = 1 << 15;
    /// Resume (suppresses instruction breakpoints once).
    pub const RF: u64 = 1 << 16;
    /// Virtual-8086 mode.
    pub const VM: u64 = 1 << 17;
    /// Alignment check.
    pub const AC: u64 = 1 << 18;
    /// Virtual interrupt flag.
    pub const VIF: u64 = 1 << 19;
    /// Virtual interrupt pending.
    pub const VIP: u64 = 1 << 20;
    /// CPUID is available (writable).
    pub const ID: u64 = 1 << 21;
    /// The arithmetic status flags.
    pub const STATUS: u64 = CF | PF | AF | ZF | SF | OF;
    /// The 286's flags that POPF and IRET may write (with RF, which IRET
    /// restores); later models add AC and ID.
    pub const WRITABLE_286: u64 = STATUS | TF | IF | DF | IOPL | NT | RF;
}

/// A segment register with its hidden descriptor cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Segment {
    /// The visible selector.
    pub selector: u16,
    /// Descriptor attributes: the access byte in bits 0–7 (type, S, DPL, P) and
    /// the flags nibble in bits 12–15 (AVL, L, D/B, G), as in the descriptor.
    pub attrs: u16,
    /// Byte-granular limit (the last valid offset).
    pub limit: u32,
    /// Linear base address.
    pub base: u64,
}

/// Descriptor attribute bits of [`Segment::attrs`].
pub mod attrs {
    /// Accessed.
    pub const ACCESSED: u16 = 1 << 0;
    /// Data: writable. Code: readable.
    pub const RW: u16 = 1 << 1;
    /// Data: expand-down. Code: conforming.
    pub const DC: u16 = 1 << 2;
    /// Code segment (else data).
    pub const CODE: u16 = 1 << 3;
    /// Code or data (else system).
    pub const S: u16 = 1 << 4;
    /// Shift of the descriptor privilege level.
    pub const DPL_SHIFT: u16 = 5;
    /// Present.
    pub const P: u16 = 1 << 7;
    /// 64-bit code segment.
    pub const L: u16 = 1 << 13;
    /// Default operand size 32 (code) / big stack (data).
    pub const DB: u16 = 1 << 14;
    /// Limit in 4 KiB units.
    pub const G: u16 = 1 << 15;
    /// What a real-mode data or stack segment looks like: present, writable,
    /// accessed, privilege 0.
    pub const REAL_DATA: u16 = P | S | RW | ACCESSED;
    /// What a real-mode code segment looks like.
    pub const REAL_CODE: u16 = P | S | CODE | RW | ACCESSED;
}

/// The base and limit of the GDT or IDT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TableRegister {
    /// Linear base address.
    pub base: u64,
    /// Byte limit.
    pub limit: u32,
}

/// CR0 bits.
pub mod cr0 {
    /// Protection enable.
    pub const PE: u64 = 1 << 0;
    /// Monitor coprocessor.
    pub const MP: u64 = 1 << 1;
    /// Emulate the FPU (ESC instructions raise #NM).
    pub const EM: u64 = 1 << 2;
    /// Task switched.
    pub const TS: u64 = 1 << 3;
    /// Extension type (387 present).
    pub const ET: u64 = 1 << 4;
    /// Numeric error reporting through #MF.
    pub const NE: u64 = 1 << 5;
    /// Supervisor writes honour read-only pages.
    pub const WP: u64 = 1 << 16;
    /// Alignment checks (with RFLAGS.AC at privilege 3).
    pub const AM: u64 = 1 << 18;
    /// Not write-through.
    pub const NW: u64 = 1 << 29;
    /// Cache disable.
    pub const CD: u64 = 1 << 30;
    /// Paging.
    pub const PG: u64 = 1 << 31;
}

/// EFER bits.
pub mod efer {
    /// SYSCALL/SYSRET enabled.
    pub const SCE: u64 = 1 << 0;
    /// Long mode enabled (takes effect with paging).
    pub const LME: u64 = 1 << 8;
    /// Long mode active.
    pub const LMA: u64 = 1 << 10;
    /// No-execute page protection enabled.
    pub const NXE: u64 = 1 << 11;
}

/// Everything a program can see of an x86 CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct CpuState {
    /// RAX … R15 in encoding order ([`gpr`]).
    pub gpr: [u64; 16],
    /// The instruction pointer (offset into CS).
    pub rip: u64,
    /// RFLAGS ([`flags`]).
    pub rflags: u64,
    /// ES, CS, SS, DS, FS, GS ([`SegReg`] order).
    pub segs: [Segment; 6],
    /// The local descriptor table register.
    pub ldtr: Segment,
    /// The task register.
    pub tr: Segment,
    /// The global descriptor table register.
    pub gdtr: TableRegister,
    /// The interrupt descriptor table register (the IVT in real mode).
    pub idtr: TableRegister,
    /// CR0 ([`cr0`]); the 286's machine status word is its low 16 bits.
    pub cr0: u64,
    /// The last page-fault address.
    pub cr2: u64,
    /// The page-table root.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// Debug registers DR0–DR7 (DR4/DR5 alias DR6/DR7).
    pub dr: [u64; 8],
    /// The extended feature enable register ([`efer`]).
    pub efer: u64,
    /// CR8, the task-priority register.
    pub cr8: u64,
    /// XMM0 … XMM15.
    pub xmm: [u128; 16],
    /// The SSE control and status register.
    pub mxcsr: u32,
    /// The x87 FPU, whose data registers are also MMX's.
    pub x87: X87State,
    /// XCR0: the state components XSAVE manages (bit 0 x87, bit 1 SSE, bit 9
    /// PKRU).
    pub xcr0: u64,
    /// The protection-key rights register: two bits per key (access
    /// disable, write disable).
    pub pkru: u32,
    /// The other model-specific registers.
    pub msr: Msrs,
}

/// The x87 floating-point unit. Its eight data registers are also the MMX
/// registers (MM*i* is the significand of physical register *i*).
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct X87State {
    /// The data registers R0–R7 by physical number (ST(*i*) is
    /// R((TOP + *i*) mod 8)): the 80-bit extended value in bits 0–79,
    /// significand in 0–63, exponent in 64–78, sign in 79.
    pub regs: [u128; 8],
    /// The control word: exception masks, precision and rounding control.
    pub fcw: u16,
    /// The status word without TOP: exception flags, stack fault, the condition
    /// codes C0–C3 and busy; bits 11–13 are kept zero here, TOP is [`X87State::top`].
    pub fsw: u16,
    /// The top-of-stack pointer (0–7).
    pub top: u8,
    /// Bit *i* set: physical register *i* is in use (FXSAVE's abridged tag
    /// word). The full two-bit tags follow from the registers' contents.
    pub used: u8,
    /// The last non-control instruction's opcode (11 bits).
    pub fop: u16,
    /// Its code selector and offset.
    pub fcs: u16,
    /// Its instruction pointer.
    pub fip: u64,
    /// Its memory operand's selector.
    pub fds: u16,
    /// Its memory operand's offset.
    pub fdp: u64,
}

/// x87 status word bits ([`X87State::fsw`]).
pub mod fsw {
    /// Invalid operation.
    pub const IE: u16 = 1 << 0;
    /// Denormal operand.
    pub const DE: u16 = 1 << 1;
    /// Divide by zero.
    pub const ZE: u16 = 1 << 2;
    /// Overflow.
    pub const OE: u16 = 1 << 3;
    /// Underflow.
    pub const UE: u16 = 1 << 4;
    /// Precision (inexact).
    pub const PE: u16 = 1 << 5;
    /// Stack fault (with IE: C1 tells overflow from underflow).
    pub const SF: u16 = 1 << 6;
    /// Exception summary: an unmasked exception is pending.
    pub const ES: u16 = 1 << 7;
    /// Condition code C0.
    pub const C0: u16 = 1 << 8;
    /// Condition code C1.
    pub const C1: u16 = 1 << 9;
    /// Condition code C2.
    pub const C2: u16 = 1 << 10;
    /// Where TOP sits in the architectural status word.
    pub const TOP_SHIFT: u16 = 11;
    /// Condition code C3.
    pub const C3: u16 = 1 << 14;
    /// Busy (mirrors ES).
    pub const B: u16 = 1 << 15;
    /// The six exception flags.
    pub const EXCEPTIONS: u16 = IE | DE | ZE | OE | UE | PE;
}

impl X87State {
    /// The state FNINIT leaves: every exception masked, extended precision,
    /// round to nearest, an empty stack.
    pub const INIT: X87State = X87State {
        regs: [0; 8],
        fcw: 0x037f,
        fsw: 0,
        top: 0,
        used: 0,
        fop: 0,
        fcs: 0,
        fip: 0,
        fds: 0,
        fdp: 0,
    };

    /// The architectural status word, TOP included.
    pub fn status_word(&self) -> u16 {
        (self.fsw & !(7 << fsw::TOP_SHIFT)) | (u16::from(self.top) << fsw::TOP_SHIFT)
    }

    /// Sets the status word, TOP included.
    pub fn set_status_word(&mut self, word: u16) {
        self.top = ((word >> fsw::TOP_SHIFT) & 7) as u8;
        self.fsw = word & !(7 << fsw::TOP_SHIFT);
    }

    /// MMX register `n`.
    pub fn mmx(&self, n: usize) -> u64 {
        self.regs[n] as u64
    }

    /// Writes MMX register `n` as MMX instructions do: the significand is the
    /// value, the sign and exponent become all ones.
    pub fn set_mmx(&mut self, n: usize, value: u64) {
        self.regs[n] = u128::from(value) | (0xffff << 64);
    }

    /// What every MMX instruction but EMMS does to the x87 state: TOP becomes 0
    /// and every register is in use.
    pub fn enter_mmx(&mut self) {
        self.top = 0;
        self.used = 0xff;
    }
}

/// Model-specific registers beside EFER.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Msrs {
    /// SYSCALL/SYSRET selectors (IA32_STAR).
    pub star: u64,
    /// 64-bit SYSCALL target (IA32_LSTAR).
    pub lstar: u64,
    /// Compatibility-mode SYSCALL target (IA32_CSTAR).
    pub cstar: u64,
    /// RFLAGS bits SYSCALL clears (IA32_FMASK).
    pub sfmask: u64,
    /// What SWAPGS exchanges with the GS base.
    pub kernel_gs_base: u64,
    /// SYSENTER code selector.
    pub sysenter_cs: u64,
    /// SYSENTER stack pointer.
    pub sysenter_esp: u64,
    /// SYSENTER entry point.
    pub sysenter_eip: u64,
    /// RDTSCP's and RDPID's value.
    pub tsc_aux: u64,
    /// Page attribute table.
    pub pat: u64,
    /// The local APIC's base and enable bits (the machine's APIC reads it).
    pub apic_base: u64,
    /// Added to the instruction count to make the time-stamp counter.
    pub tsc_offset: u64,
    /// MTRR default type.
    pub mtrr_def_type: u64,
    /// Variable MTRRs: base and mask pairs.
    pub mtrr_var: [u64; 16],
    /// Fixed-range MTRRs.
    pub mtrr_fixed: [u64; 11],
    /// IA32_MISC_ENABLE.
    pub misc_enable: u64,
}

impl Default for CpuState {
    fn default() -> CpuState {
        CpuState {
            gpr: [0; 16],
            rip: 0,
            rflags: flags::FIXED1,
            segs: [Segment::default(); 6],
            ldtr: Segment::default(),
            tr: Segment::default(),
            gdtr: TableRegister::default(),
            idtr: TableRegister::default(),
            cr0: 0,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            dr: [0; 8],
            efer: 0,
            cr8: 0,
            xmm: [0; 16],
            mxcsr: 0x1f80,
            x87: X87State::INIT,
            xcr0: 1,
            pkru: 0,
            msr: Msrs {
                pat: 0x0007_0406_0007_0406,
                apic_base: 0xfee0_0900,
                misc_enable: 1,
                ..Msrs::default()
            },
        }
    }
}

impl CpuState {
    /// Segment register `seg`.
    #[inline]
    pub fn seg(&self, seg: SegReg) -> &Segment {
        &self.segs[seg as usize]
    }

    /// Loads `seg` as real mode and virtual-8086 mode do: the base is the
    /// selector times 16; the limit and attributes stay (so "unreal" limits a
    /// protected-mode program left behind persist, as on a 386).
    pub fn load_real_segment(&mut self, seg: SegReg, selector: u16) {
        let s = &mut self.segs[seg as usize];
        s.selector = selector;
        s.base = u64::from(selector) << 4;
    }

    /// A flat user-level state for code of `bits` (32 or 64): protected mode
    /// (and long mode for 64), every segment based at 0 with a 4 GiB limit,
    /// privilege 3, interrupts enabled. What an operating system gives a
    /// user program, short of paging; tests and user-mode emulation start here.
    pub fn flat(bits: u32) -> CpuState {
        let mut state = CpuState::at_reset();
        state.cr0 |= cr0::PE;
        let dpl3 = 3 << attrs::DPL_SHIFT;
        for (i, seg) in state.segs.iter_mut().enumerate() {
            let code = i == SegReg::Cs as usize;
            seg.selector = if code { 0x33 } else { 0x2b };
            seg.base = 0;
            seg.limit = 0xffff_ffff;
            seg.attrs = dpl3
                | attrs::G
                | if code {
                    attrs::REAL_CODE | if bits == 64 { attrs::L } else { attrs::DB }
                } else {
                    attrs::REAL_DATA | attrs::DB
                };
        }
        if bits == 64 {
            state.efer |= efer::LME | efer::LMA;
        }
        // What an operating system enables for its programs: SSE state.
        state.cr4 |= (1 << 9) | (1 << 10);
        state.cr0 |= cr0::MP | cr0::NE;
        // And the x87 as FNINIT leaves it (as Linux starts a program).
        state.x87 = X87State::INIT;
        state.rflags = flags::FIXED1 | flags::IF;
        state
    }

    /// The state after a hardware reset: real mode, CS:IP = F000:FFF0 with the
    /// CS base at 0xFFFF_0000 (so the first fetch reaches the top of the
    /// address space), every segment limit 64 KiB.
    pub fn at_reset() -> CpuState {
        let mut state = CpuState::default();
        for (i, seg) in state.segs.iter_mut().enumerate() {
            seg.limit = 0xffff;
            seg.attrs = if i == SegReg::Cs as usize {
                attrs::REAL_CODE
            } else {
                attrs::REAL_DATA
            };
        }
        state.segs[SegReg::Cs as usize].selector = 0xf000;
        state.segs[SegReg::Cs as usize].base = 0xffff_0000;
        state.rip = 0xfff0;
        state.idtr.limit = 0x3ff;
        state.gdtr.limit = 0xffff;
        state.ldtr.limit = 0xffff;
        state.ldtr.attrs = attrs::P | 2;
        state.tr.limit = 0xffff;
        state.tr.attrs = attrs::P | 3;
        state.cr0 = 0x6000_0010;
        // The x87 at power-up: FCW 0x0040, every register +0 and tagged zero.
        state.x87.fcw = 0x0040;
        state.x87.used = 0xff;
        state.dr[6] = 0xffff_0ff0;
        state.dr[7] = 0x400;
        state
    }
}
