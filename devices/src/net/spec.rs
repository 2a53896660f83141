//! Reading a netdev's options, spelled as QEMU 7.2 spells them
//! (`-netdev stream,id=n0,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=1234`),
//! so that a command line written for QEMU means the same here: which keys a
//! backend takes, booleans, durations and socket addresses. Every error is
//! one line that starts with `netdev ID: ` and names what is wrong.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use emu_core::config::NetdevSpec;

/// The options of one netdev, checked against the ones its kind takes, with
/// readers that turn a bad value into the netdev's one-line error.
#[derive(Debug)]
pub struct NetdevArgs<'a> {
    id: &'a str,
    values: Vec<(&'a str, &'a str)>,
}

impl<'a> NetdevArgs<'a> {
    /// Checks `spec`'s options: each must be one of `accepted` (or `pcap`,
    /// which every kind takes) and given once.
    pub fn new(spec: &'a NetdevSpec, accepted: &[&str]) -> Result<NetdevArgs<'a>, String> {
        let mut values: Vec<(&str, &str)> = Vec::new();
        for (key, value) in &spec.options {
            if key != "pcap" && !accepted.contains(&key.as_str()) {
                return Err(format!(
                    "netdev {}: unknown option '{key}' for {} (it takes {}, pcap)",
                    spec.id,
                    spec.kind,
                    accepted.join(", ")
                ));
            }
            if values.iter().any(|(seen, _)| seen == key) {
                return Err(format!("netdev {}: option '{key}' given twice", spec.id));
            }
            values.push((key, value));
        }
        Ok(NetdevArgs {
            id: &spec.id,
            values,
        })
    }

    /// The netdev's id.
    pub fn id(&self) -> &str {
        self.id
    }

    /// `message` as this netdev's error: `netdev ID: message`.
    pub fn error(&self, message: impl fmt::Display) -> String {
        format!("netdev {}: {message}", self.id)
    }

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.values
            .iter()
            .find(|(seen, _)| *seen == key)
            .map(|(_, value)| *value)
    }

    /// The value of `key`, which must be given.
    pub fn require(&self, key: &str) -> Result<&'a str, String> {
        self.get(key)
            .ok_or_else(|| self.error(format_args!("missing {key}")))
    }

    /// A boolean as QEMU reads one (`on`/`off`, `yes`/`no`, `true`/`false`),
    /// `default` when absent.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some("on" | "yes" | "true") => Ok(true),
            Some("off" | "no" | "false") => Ok(false),
            Some(other) => Err(self.error(format_args!("bad {key}={other} (on or off)"))),
        }
    }

    /// A number of seconds, `None` when absent or 0.
    pub fn seconds(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(text) => match text.parse::<u64>() {
                Ok(0) => Ok(None),
                Ok(seconds) => Ok(Some(seconds)),
                Err(_) => Err(self.error(format_args!("bad {key}={text} (a number of seconds)"))),
            },
        }
    }

    /// The socket address under `prefix` (`addr`, `local`, `remote`):
    /// `PREFIX.type=inet` with `PREFIX.host` and `PREFIX.port`, or
    /// `PREFIX.type=unix` with `PREFIX.path`. Port 0 (the OS picks one) only
    /// where `listening`.
    pub fn socket(&self, prefix: &str, listening: bool) -> Result<SocketSpec, String> {
        let key = |name: &str| format!("{prefix}.{name}");
        let kind = self
            .get(&key("type"))
            .ok_or_else(|| self.error(format_args!("missing {prefix}.type (inet or unix)")))?;
        let stray = |names: &[&str], kind: &str| -> Result<(), String> {
            match names
                .iter()
                .map(|name| key(name))
                .find(|k| self.get(k).is_some())
            {
                Some(k) => Err(self.error(format_args!("{k} is not for {prefix}.type={kind}"))),
                None => Ok(()),
            }
        };
        match kind {
            "inet" => {
                stray(&["path"], kind)?;
                let host = self.require(&key("host"))?;
                if host.is_empty() {
                    return Err(self.error(format_args!("{prefix}.host is empty")));
                }
                let text = self.require(&key("port"))?;
                let lowest = if listening { 0 } else { 1 };
                let port = text
                    .parse::<u16>()
                    .ok()
                    .filter(|&port| port >= lowest)
                    .ok_or_else(|| {
                        self.error(format_args!(
                            "bad {prefix}.port={text} (a number from {lowest} to 65535)"
                        ))
                    })?;
                Ok(SocketSpec::Inet {
                    host: host.to_owned(),
                    port,
                })
            }
            "unix" => {
                stray(&["host", "port"], kind)?;
                let path = self.require(&key("path"))?;
                if path.is_empty() {
                    return Err(self.error(format_args!("{prefix}.path is empty")));
                }
                // The kernel's sockaddr_un holds 108 bytes with the final NUL.
                if path.len() > UNIX_PATH_MAX {
                    return Err(self.error(format_args!(
                        "{prefix}.path is {} bytes, more than the {UNIX_PATH_MAX} a UNIX socket path may have: {path}",
                        path.len()
                    )));
                }
                Ok(SocketSpec::Unix {
                    path: PathBuf::from(path),
                })
            }
            other => Err(self.error(format_args!(
                "{prefix}.type={other} is not supported (inet or unix)"
            ))),
        }
    }
}

/// The longest path a UNIX socket may be bound or connected at.
pub const UNIX_PATH_MAX: usize = 107;

/// Where a socket listens, binds or connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketSpec {
    /// TCP or UDP: a host name or address, and a port.
    Inet {
        /// Name or address, as given.
        host: String,
        /// 0 where the OS picks one.
        port: u16,
    },
    /// A UNIX socket at a path.
    Unix {
        /// The socket file.
        path: PathBuf,
    },
}

impl SocketSpec {
    /// The addresses an inet spec's host resolves to (none for unix).
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match self {
            SocketSpec::Inet { host, port } => {
                Ok((host.as_str(), *port).to_socket_addrs()?.collect())
            }
            SocketSpec::Unix { .. } => Ok(Vec::new()),
        }
    }
}

impl fmt::Display for SocketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketSpec::Inet { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            SocketSpec::Inet { host, port } => write!(f, "{host}:{port}"),
            SocketSpec::Unix { path } => write!(f, "{}", path.display()),
        }
    }
}

/// What an OS error says, without std's ` (os error N)` suffix, so that
/// messages read `Connection refused` as a user expects.
pub fn io_reason(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::net::stream::tests::spec as options;

    #[test]
    fn socket_addresses_are_checked_before_any_socket_is_made() {
        let check = |pairs: &[(&str, &str)], listening: bool| {
            let spec = options("n0", "stream", pairs);
            let args = NetdevArgs::new(&spec, crate::net::stream::OPTIONS).unwrap();
            args.socket("addr", listening)
        };
        assert_eq!(
            check(
                &[
                    ("addr.type", "inet"),
                    ("addr.host", "::1"),
                    ("addr.port", "0")
                ],
                true
            )
            .unwrap()
            .to_string(),
            "[::1]:0"
        );
        assert_eq!(
            check(
                &[
                    ("addr.type", "inet"),
                    ("addr.host", "h"),
                    ("addr.port", "0")
                ],
                false
            )
            .unwrap_err(),
            "netdev n0: bad addr.port=0 (a number from 1 to 65535)"
        );
        assert_eq!(
            check(&[("addr.type", "inet"), ("addr.host", "h")], false).unwrap_err(),
            "netdev n0: missing addr.port"
        );
        assert_eq!(
            check(
                &[
                    ("addr.type", "inet"),
                    ("addr.host", "h"),
                    ("addr.port", "70000")
                ],
                true
            )
            .unwrap_err(),
            "netdev n0: bad addr.port=70000 (a number from 0 to 65535)"
        );
        assert_eq!(
            check(&[], true).unwrap_err(),
            "netdev n0: missing addr.type (inet or unix)"
        );
        assert_eq!(
            check(&[("addr.type", "fd")], true).unwrap_err(),
            "netdev n0: addr.type=fd is not supported (inet or unix)"
        );
        assert_eq!(
            check(
                &[
                    ("addr.type", "unix"),
                    ("addr.path", "/a"),
                    ("addr.port", "1")
                ],
                true
            )
            .unwrap_err(),
            "netdev n0: addr.port is not for addr.type=unix"
        );
        let long = format!("/tmp/{}", "x".repeat(120));
        let error = check(&[("addr.type", "unix"), ("addr.path", &long)], true).unwrap_err();
        assert!(error.starts_with("netdev n0: addr.path is 125 bytes, more than the 107"));
    }

    #[test]
    fn os_errors_read_without_their_number() {
        let error = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_reason(&error), "Connection refused");
    }
}
