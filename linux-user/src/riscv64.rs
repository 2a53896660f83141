//! riscv64 Linux: the ABI ([`RISCV64`]) and [`LinuxCpu`] for Turing's RV64GC
//! hart. System calls are `ecall` with the number in a7, arguments in a0–a5 and
//! the result in a0; the thread pointer is tp; signal handlers get Linux's
//! riscv64 `rt_sigframe` (siginfo, then a ucontext whose mcontext holds pc,
//! x1–x31 and the D extension's state).

use std::sync::Arc;

use cpu_riscv::hart::{Hart, RunExit};
use cpu_riscv::trap::cause;
use emu_core::{Bus, VirtualClock};
use goblin::elf::header::EM_RISCV;

use crate::arch::{Arch, CpuExit, LinuxCpu, SignalFrame};
use crate::space::UserMemory;

/// AT_HWCAP for RV64GC: one bit per single-letter extension (IMAFDC).
const HWCAP_RV64GC: u64 = (1 << (b'i' - b'a'))
    | (1 << (b'm' - b'a'))
    | 1 // 'a'
    | (1 << (b'f' - b'a'))
    | (1 << (b'd' - b'a'))
    | (1 << (b'c' - b'a'));

/// `li a7, 139` (rt_sigreturn); `ecall`.
const SIGRETURN_CODE: [u8; 8] = [0x93, 0x08, 0xb0, 0x08, 0x73, 0x00, 0x00, 0x00];

/// riscv64 Linux.
pub static RISCV64: Arch = Arch {
    name: "riscv64",
    elf_machine: EM_RISCV,
    hwcap: HWCAP_RV64GC,
    syscalls: crate::syscall::GENERIC_TABLE,
    sigreturn_code: &SIGRETURN_CODE,
    new_cpu: new_hart,
};

/// The registers Linux names in the riscv64 ABI.
const RA: usize = 1;
const SP: usize = 2;
const TP: usize = 4;
const A0: usize = 10;
const A7: usize = 17;

/// Bytes of the frame: siginfo (128) and ucontext (uc_flags, uc_link, uc_stack,
/// a 1024-bit sigset area, then mcontext at 176: 32 registers and the 528-byte
/// FP state).
const SIGINFO: u64 = 128;
const UC_STACK: u64 = 16;
const UC_SIGMASK: u64 = 40;
const UC_MCONTEXT: u64 = 176;
const MC_FP: u64 = UC_MCONTEXT + 256;
const FRAME: u64 = SIGINFO + MC_FP + 528;

fn new_hart(bus: Arc<Bus>, clock: Arc<VirtualClock>, memory: Arc<UserMemory>) -> Box<dyn LinuxCpu> {
    let mut hart = Hart::new(0, bus, clock);
    // rdcycle, rdtime and rdinstret work in U-mode, as Linux allows.
    hart.state.mcounteren = 7;
    hart.state.scounteren = 7;
    hart.enter_user_mode(memory);
    Box::new(hart)
}

impl LinuxCpu for Hart {
    fn run(&mut self, budget: u64) -> CpuExit {
        match Hart::run(self, budget) {
            RunExit::UserTrap => {}
            RunExit::Budget | RunExit::WaitForInterrupt | RunExit::Stopped | RunExit::Debug => {
                return CpuExit::Budget;
            }
        }
        let Some(trap) = self.take_user_trap() else {
            return CpuExit::Budget;
        };
        let (signal, code) = match trap.cause {
            cause::ECALL_FROM_U => return CpuExit::Syscall,
            // SEGV_MAPERR; the caller tells SEGV_ACCERR by the mapping.
            cause::LOAD_PAGE_FAULT
            | cause::STORE_PAGE_FAULT
            | cause::INSTRUCTION_PAGE_FAULT
            | cause::LOAD_ACCESS_FAULT
            | cause::STORE_ACCESS_FAULT
            | cause::INSTRUCTION_ACCESS_FAULT => (libc::SIGSEGV, 1),
            // BUS_ADRALN
            cause::LOAD_MISALIGNED | cause::STORE_MISALIGNED | cause::INSTRUCTION_MISALIGNED => {
                (libc::SIGBUS, 1)
            }
            // TRAP_BRKPT
            cause::BREAKPOINT => (libc::SIGTRAP, 1),
            // ILL_ILLOPC
            _ => (libc::SIGILL, 1),
        };
        CpuExit::Fault {
            signal,
            code,
            address: trap.tval,
        }
    }

    fn syscall(&self) -> (u64, [u64; 6]) {
        let x = &self.state.x;
        (
            x[A7],
            [x[A0], x[A0 + 1], x[A0 + 2], x[A0 + 3], x[A0 + 4], x[A0 + 5]],
        )
    }

    fn finish_syscall(&mut self, result: u64) {
        self.state.x[A0] = result;
        self.state.pc = self.state.pc.wrapping_add(4);
    }

    fn pc(&self) -> u64 {
        self.state.pc
    }

    fn stack_pointer(&self) -> u64 {
        self.state.x[SP]
    }

    fn start(&mut self, entry: u64, stack: u64) {
        self.state.pc = entry;
        self.state.x[SP] = stack;
    }

    fn flush_code(&mut self) {
        self.flush_translations();
        Hart::flush_code(self);
    }

    fn after_fork(&mut self) {
        self.jit_after_fork();
    }

    fn enable_jit(&mut self, threshold: u32, background: bool) -> Result<(), String> {
        if background {
            self.enable_background_jit(threshold)
        } else {
            Hart::enable_jit(self, threshold)
        }
    }

    fn new_thread(
        &self,
        memory: Arc<UserMemory>,
        stack: u64,
        tls: Option<u64>,
    ) -> Box<dyn LinuxCpu> {
        let mut child = Hart::new(0, self.bus().clone(), self.clock().clone());
        child.state = self.state.clone();
        child.enter_user_mode(memory);
        child.finish_syscall(0);
        child.set_child_registers(stack, tls);
        Box::new(child)
    }

    fn set_child_registers(&mut self, stack: u64, tls: Option<u64>) {
        if stack != 0 {
            self.state.x[SP] = stack;
        }
        if let Some(tls) = tls {
            self.state.x[TP] = tls;
        }
    }

    fn enter_signal_handler(&mut self, memory: &UserMemory, frame: &SignalFrame) -> bool {
        let at = frame.stack_top.wrapping_sub(FRAME) & !15;
        let mut bytes = vec![0u8; FRAME as usize];
        let mut put = |offset: u64, data: &[u8]| {
            bytes[offset as usize..offset as usize + data.len()].copy_from_slice(data);
        };
        put(0, &frame.info);
        let uc = SIGINFO;
        let (alt_base, alt_size, alt_flags) = frame.alt_stack;
        put(uc + UC_STACK, &alt_base.to_le_bytes());
        put(uc + UC_STACK + 8, &alt_flags.to_le_bytes());
        put(uc + UC_STACK + 16, &alt_size.to_le_bytes());
        put(uc + UC_SIGMASK, &frame.saved_mask.to_le_bytes());
        put(uc + UC_MCONTEXT, &self.state.pc.to_le_bytes());
        for reg in 1..32 {
            put(
                uc + UC_MCONTEXT + reg * 8,
                &self.state.x[reg as usize].to_le_bytes(),
            );
        }
        for reg in 0..32 {
            put(
                uc + MC_FP + reg * 8,
                &self.state.f[reg as usize].to_le_bytes(),
            );
        }
        put(uc + MC_FP + 256, &self.state.fcsr.to_le_bytes());
        if memory.write(at, &bytes).is_err() {
            return false;
        }
        self.state.x[RA] = frame.restorer;
        self.state.x[SP] = at;
        self.state.x[A0] = frame.signal as u64;
        self.state.x[A0 + 1] = at;
        self.state.x[A0 + 2] = at.wrapping_add(uc);
        self.state.pc = frame.handler;
        self.state.reservation = u64::MAX;
        true
    }

    fn return_from_signal(&mut self, memory: &UserMemory) -> Option<u64> {
        let at = self.state.x[SP];
        let mut bytes = vec![0u8; FRAME as usize];
        memory.read(at, &mut bytes).ok()?;
        let word = |offset: u64| {
            u64::from_le_bytes(
                bytes[offset as usize..offset as usize + 8]
                    .try_into()
                    .unwrap_or_default(),
            )
        };
        let uc = SIGINFO;
        self.state.pc = word(uc + UC_MCONTEXT);
        for reg in 1..32 {
            self.state.x[reg as usize] = word(uc + UC_MCONTEXT + reg * 8);
        }
        for reg in 0..32 {
            self.state.f[reg as usize] = word(uc + MC_FP + reg * 8);
        }
        self.state.fcsr = (word(uc + MC_FP + 256) & 0xff) as u32;
        self.state.reservation = u64::MAX;
        Some(word(uc + UC_SIGMASK))
    }

    fn instructions_retired(&self) -> u64 {
        self.state.instret
    }

    fn jit_stats(&self) -> Option<jit_core::JitStats> {
        Hart::jit_stats(self)
    }
}
