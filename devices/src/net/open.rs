//! Opening a netdev: the backend its type names, on a fresh pair of ports,
//! with the capture its `pcap=` asks for. An open that fails leaves nothing
//! behind: no thread, no socket file, no capture file.

use std::path::Path;

use emu_core::config::NetdevSpec;

use super::spec::NetdevArgs;
use super::{BackendPort, NetPort, dgram, pcap, port_pair, stream, user};

/// Opens the backend `spec` names and returns the NIC's port onto it; the
/// port holds the backend, and dropping the port stops it.
pub fn open_netdev(spec: &NetdevSpec) -> Result<NetPort, String> {
    let id = &spec.id;
    match spec.kind.as_str() {
        "stream" => {
            let args = NetdevArgs::new(spec, stream::OPTIONS)?;
            let config = stream::StreamConfig::parse(&args)?;
            with_port(&args, |port| {
                stream::StreamBackend::open(&config, port).map(|b| Box::new(b) as Box<dyn Send>)
            })
        }
        "dgram" => {
            let args = NetdevArgs::new(spec, dgram::OPTIONS)?;
            let config = dgram::DgramConfig::parse(&args)?;
            with_port(&args, |port| {
                dgram::DgramBackend::open(&config, port).map(|b| Box::new(b) as Box<dyn Send>)
            })
        }
        "user" => {
            // hostfwd may repeat, as on QEMU: the user network reads its
            // own options.
            let capture: Vec<(String, String)> = spec
                .options
                .iter()
                .filter(|(key, _)| key == "pcap")
                .cloned()
                .collect();
            let rest: Vec<(String, String)> = spec
                .options
                .iter()
                .filter(|(key, _)| key != "pcap")
                .cloned()
                .collect();
            let options =
                user::UserOptions::parse(&rest).map_err(|e| format!("netdev {id}: {e}"))?;
            let only_capture = NetdevSpec {
                kind: spec.kind.clone(),
                id: spec.id.clone(),
                options: capture,
            };
            let args = NetdevArgs::new(&only_capture, &[])?;
            with_port(&args, |port| {
                user::start(&options, port)
                    .map(|b| Box::new(b) as Box<dyn Send>)
                    .map_err(|e| format!("netdev {id}: {e}"))
            })
        }
        kind => Err(format!(
            "netdev {id}: unknown kind '{kind}' (available: user, stream, dgram)"
        )),
    }
}

/// Makes the port pair, with the capture the options ask for, and opens the
/// backend on its end. A failed open removes the capture file it created.
fn with_port(
    args: &NetdevArgs<'_>,
    open: impl FnOnce(BackendPort) -> Result<Box<dyn Send>, String>,
) -> Result<NetPort, String> {
    let capture_path = args.get("pcap").map(Path::new);
    let capture = match capture_path {
        Some(path) => Some(pcap::PcapWriter::create(path).map_err(|e| args.error(e))?),
        None => None,
    };
    let (mut nic, port) = port_pair(capture);
    match open(port) {
        Ok(backend) => {
            nic.hold_backend(backend);
            Ok(nic)
        }
        Err(error) => {
            if let Some(path) = capture_path {
                let _ = std::fs::remove_file(path);
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::net::stream::tests::spec as options;

    #[test]
    fn unknown_kinds_and_options_are_one_line_errors() {
        let error = open_netdev(&options("n0", "tap", &[])).unwrap_err();
        assert_eq!(
            error,
            "netdev n0: unknown kind 'tap' (available: user, stream, dgram)"
        );
        let error = open_netdev(&options("n1", "stream", &[("colour", "red")])).unwrap_err();
        assert!(
            error.starts_with("netdev n1: unknown option 'colour' for stream (it takes server,")
        );
        assert!(!error.contains('\n'));
        let error = open_netdev(&options(
            "n2",
            "dgram",
            &[("local.type", "inet"), ("local.type", "unix")],
        ))
        .unwrap_err();
        assert_eq!(error, "netdev n2: option 'local.type' given twice");
    }

    #[test]
    fn a_failed_open_leaves_no_capture_file() {
        let dir = std::env::temp_dir().join(format!("turing-spec-{}-capture", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let capture = dir.join("n0.pcap");
        let spec = options(
            "n0",
            "stream",
            &[
                ("addr.type", "unix"),
                ("addr.path", dir.join("nobody-listens").to_str().unwrap()),
                ("pcap", capture.to_str().unwrap()),
            ],
        );
        let error = open_netdev(&spec).unwrap_err();
        assert!(
            error.starts_with("netdev n0: cannot connect to "),
            "{error}"
        );
        assert!(!capture.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
