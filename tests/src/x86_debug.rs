//! The x86 test machine as the frontend drives a machine, so the frontend's
//! gdb server ([`frontend::gdb::serve`]) can serve its CPU before the `pc`
//! machine exists. The frontend names no x86 machine: the tests assemble one
//! here and hand it over as a `Box<dyn Machine>`.

use std::net::TcpListener;
use std::time::Duration;

use devices::virtio::{Display, InputHandle};
use emu_core::StopReason;
use emu_core::cpu::{RunEnd, RunLimits};
use emu_core::debug::DebugCpu;
use frontend::machines::{DebugEvent, Machine, MachineError, RunOutcome, ScreenSource};

use cpu_x86::RunExit;

use crate::x86_machine::X86TestMachine;

/// Instructions between looks at the debugger's connection.
const DEBUG_SLICE: u64 = 1 << 12;

/// The test machine with the image it was built from, for resets.
#[derive(Debug)]
pub struct DebuggableX86 {
    /// The machine.
    pub machine: X86TestMachine,
}

impl DebuggableX86 {
    /// Wraps `machine`.
    pub fn new(machine: X86TestMachine) -> DebuggableX86 {
        DebuggableX86 { machine }
    }

    /// What a stop request means for the debugger: a power-off ends the
    /// session, a reset resets the machine and it goes on.
    fn stop_event(&mut self) -> Option<DebugEvent> {
        match self.machine.control.stop_reason()? {
            StopReason::PowerOff(code) => Some(DebugEvent::PoweredOff(code)),
            StopReason::HostRequest => Some(DebugEvent::PoweredOff(0)),
            StopReason::Reset => {
                self.machine.control.clear();
                self.machine.bus.reset_devices();
                self.machine.cpu.reset();
                None
            }
        }
    }
}

impl Machine for DebuggableX86 {
    fn run(
        &mut self,
        limit: Option<Duration>,
        max_instructions: Option<u64>,
        _watch: &mut dyn FnMut() -> Option<RunOutcome>,
    ) -> Result<RunOutcome, MachineError> {
        let limits = RunLimits {
            wall: limit,
            executed: max_instructions,
        };
        Ok(match self.machine.run_limited(limits) {
            RunEnd::Stop(StopReason::PowerOff(code)) => RunOutcome::PoweredOff(code),
            RunEnd::Stop(_) | RunEnd::Watched(()) => RunOutcome::Stopped,
            RunEnd::InstructionLimit => RunOutcome::InstructionLimit,
            RunEnd::TimedOut => RunOutcome::TimedOut,
        })
    }

    fn reset(&mut self) -> Result<(), MachineError> {
        self.machine.bus.reset_devices();
        self.machine.cpu.reset();
        Ok(())
    }

    fn screen_source(&self) -> ScreenSource {
        ScreenSource::new(Display::default)
    }

    fn keyboard(&self) -> InputHandle {
        InputHandle::default()
    }

    fn tablet(&self) -> InputHandle {
        InputHandle::default()
    }

    fn device_tree(&self) -> Option<&[u8]> {
        None
    }

    fn enable_jit(&mut self, _threshold: u32) -> Result<(), String> {
        Err("the x86 CPU has no JIT".to_owned())
    }

    fn instructions_retired(&self) -> u64 {
        self.machine.cpu.executed()
    }

    fn traps_taken(&self) -> u64 {
        0
    }

    fn where_report(&mut self, _count: usize) -> String {
        format!("cpu 0 at rip {:#x}", self.machine.cpu.state.rip)
    }

    fn cpu_count(&self) -> usize {
        1
    }

    fn debug_cpu(&mut self, index: usize) -> Option<&mut dyn DebugCpu> {
        (index == 0).then_some(&mut self.machine.cpu as &mut dyn DebugCpu)
    }

    fn debug_slice(&mut self, step: Option<usize>) -> Result<DebugEvent, MachineError> {
        let cpu = &mut self.machine.cpu;
        let (exit, mut event) = match step {
            Some(index) => {
                let exit = cpu.debug_step();
                let event = match cpu.take_debug_stop() {
                    Some(stop) => DebugEvent::Stopped { cpu: index, stop },
                    None => DebugEvent::Stepped(index),
                };
                (exit, event)
            }
            None => {
                let exit = cpu.run(DEBUG_SLICE);
                let event = match (exit, cpu.take_debug_stop()) {
                    (RunExit::Debug, Some(stop)) => DebugEvent::Stopped { cpu: 0, stop },
                    _ => DebugEvent::Ran,
                };
                (exit, event)
            }
        };
        if exit == RunExit::Shutdown {
            self.machine.control.request_stop(StopReason::Reset);
        }
        if let Some(stop) = self.stop_event() {
            event = stop;
        }
        self.machine.bus.tick_devices(self.machine.clock.now());
        // A CPU waiting in HLT: let host time pass rather than spin.
        if exit == RunExit::Halted && step.is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(event)
    }
}

/// Serves gdb for `machine` on `listener` (waiting for the client first) on
/// a thread of its own; the thread returns how the session ended.
pub fn serve_gdb(
    machine: X86TestMachine,
    listener: TcpListener,
) -> std::thread::JoinHandle<Result<frontend::gdb::SessionEnd, String>> {
    std::thread::spawn(move || {
        let (_, end) = frontend::gdb::serve(Box::new(DebuggableX86::new(machine)), listener, true);
        end
    })
}
