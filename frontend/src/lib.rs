//! The `turing` frontend: command line, machine definitions and the headless
//! runner. Machine definitions (in [`machines`]) are the one place that knows both
//! CPUs and devices.
#![deny(missing_docs)]

pub mod cli;
pub mod console;
pub mod gdb;
pub mod logging;
pub mod machines;
pub mod screenshot;
pub mod script;
pub mod suite;
pub mod switch;
pub mod user;
pub mod window;
