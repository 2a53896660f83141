//! `turing switch SOCKET`: a learning Ethernet switch on a UNIX socket, for
//! VMs that share one LAN without a host bridge. Each VM joins it with
//! `--netdev stream,id=ID,addr.type=unix,addr.path=SOCKET` (QEMU VMs with the
//! same `-netdev`), speaking QEMU's length-prefixed frames.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use devices::net::switch::Switch;

/// Flags of `turing switch`.
#[derive(Debug, clap::Args)]
pub struct SwitchArgs {
    /// The UNIX socket to listen on. A socket file there that nothing
    /// listens on any more (a killed switch's) is replaced.
    #[arg(value_name = "SOCKET")]
    pub socket: PathBuf,
}

/// Runs the switch until the process is stopped (Ctrl-C, SIGTERM): nothing
/// in it needs saving, and the next start replaces the socket file.
pub fn switch(args: &SwitchArgs) -> Result<i32, String> {
    let switch = Switch::bind(&args.socket)?;
    eprintln!("turing: switch listening on {}", args.socket.display());
    switch.run(&AtomicBool::new(false))?;
    Ok(0)
}
