#![cfg(target_arch = "x86_64")]
//! The x86 interpreter against the host CPU: random sequences of user-level
//! integer instructions run natively and in the interpreter (64-bit code)
//! from the same registers, flags and memory, and every register, the
//! arithmetic flags and every byte they could touch must agree.
//!
//! `TURING_X86_HOST_CASES` sets how many sequences run (default 3,000, about
//! 13,000 instructions); `TURING_X86_HOST_SEED` the seed. Flags the
//! architecture leaves undefined are compared too when the host is an Intel
//! part (the interpreter follows Intel's silicon there), and masked otherwise.
//! On another vendor's part, sequences whose outcome that vendor may choose
//! differently are left out ([`vendor_neutral`]): those that read a flag an
//! earlier instruction left undefined, and those with x87 or MMX
//! instructions (the interpreter follows Intel's choices of NaNs, C1 and
//! tags) or the approximate reciprocals (RCPPS and the like, whose bits are
//! the vendor's).

use std::sync::Arc;

use cpu_x86::{Cpu, CpuModel, CpuState, RunExit};
use emu_core::{Bus, GuestPhysAddr, GuestRam, RunControl};
use iced_x86::{
    Decoder, DecoderOptions, Formatter, Mnemonic, NasmFormatter, OpKind, Register, RflagsBits,
};
use tests::x86_host::{
    COMPARED_FLAGS, Case, NativeError, Outcome, REGION, REGION_SIZE, Registers, Rng, STACK_LOW,
    X87Registers, generate, host_is_intel, outcome_of, region_image, run_native,
};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The status flags in iced's numbering, with their RFLAGS bits.
const STATUS_FLAGS: [(u32, u64); 6] = [
    (RflagsBits::OF, 1 << 11),
    (RflagsBits::SF, 1 << 7),
    (RflagsBits::ZF, 1 << 6),
    (RflagsBits::AF, 1 << 4),
    (RflagsBits::CF, 1),
    (RflagsBits::PF, 1 << 2),
];

/// Whether every vendor's silicon must give `case` one outcome: no
/// instruction reads a flag an earlier one left undefined (a shift or rotate
/// by CL may leave the flags as they were, so it defines none), no flag is
/// undefined at the end beyond those the comparison masks (OF after a shift
/// or rotate by more than one bit among them), and there is no
/// x87 or MMX instruction, approximate reciprocal, dot product (vendors round
/// its sums differently) or 16-bit double shift (its result is undefined for
/// counts above 16). See the module's doc.
fn vendor_neutral(case: &Case) -> bool {
    let mut decoder = Decoder::with_ip(case.bits, &case.body, 0, DecoderOptions::NONE);
    let mut undefined = 0u32;
    for instr in &mut decoder {
        let name = format!("{:?}", instr.mnemonic());
        let registers = (0..instr.op_count())
            .filter(|&k| instr.op_kind(k) == OpKind::Register)
            .map(|k| instr.op_register(k));
        let mmx = registers.clone().any(|r| r.is_mm());
        let by_cl = registers.clone().any(|r| r == Register::CL);
        let vendor_specific = matches!(
            instr.mnemonic(),
            Mnemonic::Rcpps
                | Mnemonic::Rcpss
                | Mnemonic::Rsqrtps
                | Mnemonic::Rsqrtss
                | Mnemonic::Dpps
                | Mnemonic::Dppd
                | Mnemonic::Emms
        );
        let short_double_shift = matches!(instr.mnemonic(), Mnemonic::Shld | Mnemonic::Shrd)
            && instr.op0_kind() == OpKind::Register
            && instr.op0_register().is_gpr16()
            || matches!(instr.mnemonic(), Mnemonic::Shld | Mnemonic::Shrd)
                && instr.memory_size().size() == 2;
        if name.starts_with('F') || mmx || vendor_specific || short_double_shift {
            return false;
        }
        if instr.rflags_read() & undefined != 0 {
            return false;
        }
        let shift = matches!(
            instr.mnemonic(),
            Mnemonic::Shl
                | Mnemonic::Sal
                | Mnemonic::Shr
                | Mnemonic::Sar
                | Mnemonic::Rol
                | Mnemonic::Ror
                | Mnemonic::Rcl
                | Mnemonic::Rcr
                | Mnemonic::Shld
                | Mnemonic::Shrd
        );
        let defined = if shift && by_cl {
            0
        } else {
            instr.rflags_written() | instr.rflags_cleared() | instr.rflags_set()
        };
        undefined = (undefined & !defined) | instr.rflags_undefined();
        // OF is defined only for one-bit shifts and rotates.
        let by_one = (0..instr.op_count())
            .any(|k| matches!(instr.op_kind(k), OpKind::Immediate8) && instr.immediate8() == 1);
        if shift && !by_one {
            undefined |= RflagsBits::OF;
        }
        if undefined != 0
            && matches!(
                instr.mnemonic(),
                Mnemonic::Pushf | Mnemonic::Pushfd | Mnemonic::Pushfq | Mnemonic::Lahf
            )
        {
            return false;
        }
    }
    STATUS_FLAGS
        .iter()
        .all(|&(iced, x86)| undefined & iced == 0 || case.undefined_flags & x86 != 0)
}

/// Runs `case` in the interpreter.
fn emulate(case: &Case) -> Result<Outcome, String> {
    let (image, body) = region_image(case);
    let ram = Arc::new(GuestRam::new(REGION_SIZE as u64).expect("guest RAM"));
    ram.write_bytes(0, &image);
    let bus = Bus::new(
        GuestPhysAddr(REGION),
        ram.clone(),
        Arc::new(RunControl::default()),
    )
    .expect("map RAM");
    let mut cpu = Cpu::new(CpuModel::MAX, Arc::new(bus));
    cpu.state = CpuState::flat(case.bits);
    cpu.state.gpr = case.initial.gpr;
    cpu.state.rflags = case.initial.rflags;
    cpu.state.xmm = case.initial.xmm;
    cpu.state.mxcsr = case.initial.mxcsr;
    let x87 = &case.initial.x87;
    cpu.state.x87.fcw = x87.fcw;
    cpu.state.x87.set_status_word(x87.fsw);
    cpu.state.x87.used = x87.tags;
    let top = usize::from(cpu.state.x87.top);
    for (k, v) in x87.st.iter().enumerate() {
        cpu.state.x87.regs[(top + k) & 7] = *v;
    }
    let start = REGION + body as u64;
    let end = start + case.body.len() as u64;
    cpu.state.rip = start;
    for _ in 0..10_000 {
        if cpu.state.rip == end {
            let mut after = vec![0u8; REGION_SIZE];
            ram.read_bytes(0, &mut after);
            let regs = Registers {
                gpr: cpu.state.gpr,
                rflags: cpu.state.rflags,
                mxcsr: cpu.state.mxcsr,
                xmm: cpu.state.xmm,
                x87: x87_registers(&cpu.state.x87),
            };
            return Ok(outcome_of(&after, regs));
        }
        if cpu.run(1) != RunExit::Budget {
            let (fault, at) = cpu.last_exception().unwrap_or((cpu_x86::Fault::UD, 0));
            return Err(format!(
                "the interpreter took exception {} at {:#x}",
                fault.vector, at
            ));
        }
    }
    Err("the interpreter did not reach the end".into())
}

/// The x87 state as the harness compares it (ST order, as FXSAVE has it).
fn x87_registers(x87: &cpu_x86::state::X87State) -> X87Registers {
    let top = usize::from(x87.top);
    X87Registers {
        fcw: x87.fcw,
        fsw: x87.status_word(),
        tags: x87.used,
        st: std::array::from_fn(|k| x87.regs[(top + k) & 7]),
    }
}

fn disassemble(bytes: &[u8], bits: u32) -> String {
    let mut decoder = Decoder::with_ip(bits, bytes, 0, DecoderOptions::NONE);
    let mut formatter = NasmFormatter::new();
    let mut out = String::new();
    for instr in &mut decoder {
        let mut text = String::new();
        formatter.format(&instr, &mut text);
        out.push_str(&format!(
            "    {:02x?} {text}\n",
            &bytes[instr.ip() as usize..][..instr.len()]
        ));
    }
    out
}

/// The differences between the native outcome and the interpreter's. In
/// 32-bit code only the low halves of the eight legacy registers and XMM0–7
/// exist.
fn compare(case: &Case, native: &Outcome, ours: &Outcome, intel: bool) -> Vec<String> {
    let mut diffs = Vec::new();
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    let (registers, width) = if case.bits == 32 {
        (8, 0xffff_ffff)
    } else {
        (16, u64::MAX)
    };
    for (i, name) in NAMES.iter().enumerate().take(registers) {
        if (native.regs.gpr[i] ^ ours.regs.gpr[i]) & width != 0 {
            diffs.push(format!(
                "{name} {:#x} want {:#x}",
                ours.regs.gpr[i] & width,
                native.regs.gpr[i] & width
            ));
        }
    }
    for i in 0..registers {
        if native.regs.xmm[i] != ours.regs.xmm[i] {
            diffs.push(format!(
                "xmm{i} {:#034x} want {:#034x}",
                ours.regs.xmm[i], native.regs.xmm[i]
            ));
        }
    }
    let (a, b) = (&ours.regs.x87, &native.regs.x87);
    if (a.fcw, a.fsw, a.tags) != (b.fcw, b.fsw, b.tags) {
        diffs.push(format!(
            "x87 fcw {:#06x} fsw {:#06x} tags {:#04x} want fcw {:#06x} fsw {:#06x} tags {:#04x}",
            a.fcw, a.fsw, a.tags, b.fcw, b.fsw, b.tags
        ));
    }
    for k in 0..8 {
        // Empty registers keep their contents too, so they are compared.
        if a.st[k] != b.st[k] {
            diffs.push(format!("st{k} {:#022x} want {:#022x}", a.st[k], b.st[k]));
        }
    }
    if native.regs.mxcsr != ours.regs.mxcsr {
        diffs.push(format!(
            "mxcsr {:#x} want {:#x}",
            ours.regs.mxcsr, native.regs.mxcsr
        ));
    }
    let mask = COMPARED_FLAGS & if intel { !0 } else { !case.undefined_flags };
    if (native.regs.rflags ^ ours.regs.rflags) & mask != 0 {
        diffs.push(format!(
            "flags {:#x} want {:#x} (undefined at the end: {:#x})",
            ours.regs.rflags & COMPARED_FLAGS,
            native.regs.rflags & COMPARED_FLAGS,
            case.undefined_flags
        ));
    }
    for (i, (a, b)) in native.data.iter().zip(&ours.data).enumerate() {
        if a != b {
            diffs.push(format!("data[{i:#x}] {b:#04x} want {a:#04x}"));
        }
    }
    // The native epilogue's PUSHF wrote the slot below the final stack pointer.
    let slot = if case.bits == 32 { 4 } else { 8 };
    let sp = native.regs.gpr[4] & width;
    let pushed = sp.wrapping_sub(slot).wrapping_sub(STACK_LOW) as usize;
    for (i, (a, b)) in native.stack.iter().zip(&ours.stack).enumerate() {
        if a != b && !(pushed..pushed + slot as usize).contains(&i) {
            diffs.push(format!("stack[{i:#x}] {b:#04x} want {a:#04x}"));
        }
    }
    diffs
}

/// Runs `total` random sequences of `bits`-bit code natively and in the
/// interpreter; returns (sequences, instructions, mismatches).
fn differential(bits: u32, total: usize, seed: u64) -> (usize, usize, usize) {
    let intel = host_is_intel();
    let mut rng = Rng::new(seed);
    let (mut instructions, mut failures, mut done, mut skipped) = (0, 0, 0, 0);
    while done < total {
        let batch: Vec<Case> = (0..(total - done).min(2000))
            .map(|_| generate(&mut rng, 8, bits))
            .collect();
        let native = match run_native(&batch) {
            Ok(native) => native,
            Err(NativeError::Died { case, status }) => panic!(
                "the native run died (wait status {status:#x}) in:\n{}",
                disassemble(&batch[case].body, bits)
            ),
            Err(e) => panic!("{e:?}"),
        };
        for (case, native) in batch.iter().zip(&native) {
            if !intel && !vendor_neutral(case) {
                skipped += 1;
                done += 1;
                continue;
            }
            instructions += case.instructions;
            let diffs = match emulate(case) {
                Ok(ours) => compare(case, native, &ours, intel),
                Err(why) => vec![why],
            };
            if !diffs.is_empty() {
                failures += 1;
                if failures <= 25 {
                    println!(
                        "MISMATCH in {bits}-bit case {} (seed {seed}):\n{}  initial {:x?}\n  {}",
                        done,
                        disassemble(&case.body, bits),
                        case.initial,
                        diffs.join("\n  ")
                    );
                }
            }
            done += 1;
        }
    }
    println!(
        "x86 host differential, {bits}-bit code: {done} sequences, {instructions} instructions, \
         {failures} mismatches (undefined flags {})",
        if intel {
            "compared (Intel host)".to_owned()
        } else {
            format!(
                "masked, and {skipped} sequences whose outcome the vendor may choose left out: not an Intel host"
            )
        }
    );
    (done, instructions, failures)
}

/// The suite's run for `bits`-bit code: `TURING_X86_HOST_CASES` sequences
/// (3,000 by default) from `TURING_X86_HOST_SEED`, none may differ.
fn check_differential(bits: u32) {
    let total = env_or("TURING_X86_HOST_CASES", 3000) as usize;
    let seed = env_or("TURING_X86_HOST_SEED", 1);
    let (done, _, failures) = differential(bits, total, seed);
    assert_eq!(
        failures, 0,
        "{failures} of {done} sequences differ from the host CPU"
    );
}

#[test]
fn sequences_in_64_bit_code_match_the_host_cpu() {
    check_differential(64);
}

#[test]
fn sequences_in_32_bit_code_match_the_host_cpu() {
    check_differential(32);
}

/// Runs one instruction sequence natively and in the interpreter and prints
/// both outcomes: for finding out what the silicon does.
/// `TURING_X86_PROBE=0fbcc8 TURING_X86_PROBE_REGS=rax=5,rcx=0x10,flags=0x2d5
/// cargo test -p tests --test x86_host_differential probe -- --ignored --nocapture`
#[test]
#[ignore = "a tool: run by hand with TURING_X86_PROBE set"]
fn probe() {
    let hex = std::env::var("TURING_X86_PROBE").expect("TURING_X86_PROBE=hex bytes");
    let body: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let bits = env_or("TURING_X86_PROBE_BITS", 64) as u32;
    let mut case = generate(&mut Rng::new(1), 1, bits);
    case.body = body;
    case.initial.rflags = 0x202;
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    for (i, r) in case.initial.gpr.iter_mut().enumerate() {
        if i != 3 && i != 4 {
            *r = 0;
        }
    }
    for item in std::env::var("TURING_X86_PROBE_REGS")
        .unwrap_or_default()
        .split(',')
    {
        let Some((name, value)) = item.split_once('=') else {
            continue;
        };
        let value = value.trim_start_matches("0x");
        let value = u64::from_str_radix(value, 16).expect("hex value");
        if name == "flags" {
            case.initial.rflags = value | 0x202;
        } else if let Some(i) = NAMES.iter().position(|n| *n == name) {
            case.initial.gpr[i] = value;
        }
    }
    let native = run_native(std::slice::from_ref(&case)).expect("native run");
    let ours = emulate(&case);
    print!("{}", disassemble(&case.body, case.bits));
    println!("native: {:x?}", native[0].regs);
    match ours {
        Ok(ours) => println!("ours:   {:x?}", ours.regs),
        Err(e) => println!("ours:   {e}"),
    }
}
