//! The user network's resolver at 10.0.2.3: the guest's DNS queries are
//! answered from the host's own resolver (`getaddrinfo`, so `/etc/hosts`,
//! the host's DNS servers and whatever else the host is set up with), as
//! QEMU's user network forwards to the host's resolver.
//!
//! Only what a guest's stub resolver sends is understood: one question, class
//! IN. A queries get the host's IPv4 addresses; other types get an empty
//! answer; a name the host cannot resolve gets NXDOMAIN.

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

/// Seconds the guest may cache an answer.
const TTL: u32 = 60;
const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const RCODE_FORMAT_ERROR: u16 = 1;
const RCODE_SERVER_FAILURE: u16 = 2;
const RCODE_NAME_ERROR: u16 = 3;
const RCODE_NOT_IMPLEMENTED: u16 = 4;

/// A query the resolver understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Query {
    /// The name asked for, dotted, without the final dot.
    pub name: String,
    /// The record type.
    pub kind: u16,
    /// The query's bytes up to the end of its question, for the answer.
    question_end: usize,
}

/// Parses a query; `Err` carries the answer to send at once (format error,
/// not implemented), `Ok(None)` means the message is to be ignored.
pub(crate) fn parse(message: &[u8]) -> Result<Option<Query>, Vec<u8>> {
    if message.len() < 12 {
        return Ok(None);
    }
    let flags = u16::from_be_bytes([message[2], message[3]]);
    if flags & 0x8000 != 0 {
        return Ok(None); // a response, not a query
    }
    let opcode = (flags >> 11) & 0xf;
    let questions = u16::from_be_bytes([message[4], message[5]]);
    if opcode != 0 {
        return Err(reply(message, 12, RCODE_NOT_IMPLEMENTED, &[]));
    }
    if questions != 1 {
        return Err(reply(message, 12, RCODE_FORMAT_ERROR, &[]));
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let Some(&len) = message.get(at) else {
            return Err(reply(message, 12, RCODE_FORMAT_ERROR, &[]));
        };
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers never appear in a question of a query.
        let label = message.get(at..at + usize::from(len)).filter(|_| len < 64);
        let Some(label) = label else {
            return Err(reply(message, 12, RCODE_FORMAT_ERROR, &[]));
        };
        labels.push(String::from_utf8_lossy(label).into_owned());
        at += usize::from(len);
    }
    let Some(fixed) = message.get(at..at + 4) else {
        return Err(reply(message, 12, RCODE_FORMAT_ERROR, &[]));
    };
    let kind = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let question_end = at + 4;
    if class != CLASS_IN {
        return Err(reply(message, question_end, RCODE_NOT_IMPLEMENTED, &[]));
    }
    Ok(Some(Query {
        name: labels.join("."),
        kind,
        question_end,
    }))
}

/// Resolves `query` with the host's resolver (blocking: run it off the
/// network thread) and builds the answer to `message`.
pub(crate) fn resolve(message: &[u8], query: &Query) -> Vec<u8> {
    if query.name.is_empty() {
        return reply(message, query.question_end, RCODE_NAME_ERROR, &[]);
    }
    let looked_up = (query.name.as_str(), 0).to_socket_addrs();
    match looked_up {
        Ok(addresses) => {
            let mut v4: Vec<Ipv4Addr> = addresses
                .filter_map(|a| match a.ip() {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .collect();
            v4.dedup();
            let answers = if query.kind == TYPE_A { v4 } else { Vec::new() };
            reply(message, query.question_end, 0, &answers)
        }
        Err(error)
            if error.kind() == std::io::ErrorKind::Other || error.raw_os_error().is_none() =>
        {
            reply(message, query.question_end, RCODE_NAME_ERROR, &[])
        }
        Err(_) => reply(message, query.question_end, RCODE_SERVER_FAILURE, &[]),
    }
}

/// The response to `message`: its header and question (the first
/// `question_end` bytes), `rcode`, and an A record per address.
fn reply(message: &[u8], question_end: usize, rcode: u16, addresses: &[Ipv4Addr]) -> Vec<u8> {
    let question_end = question_end.min(message.len());
    let mut out = message[..question_end].to_vec();
    let request_flags = u16::from_be_bytes([message[2], message[3]]);
    // QR, the query's opcode and RD, RA, the code.
    let flags = 0x8000 | (request_flags & 0x7900) | 0x0080 | rcode;
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    let questions: u16 = if question_end > 12 { 1 } else { 0 };
    out[4..6].copy_from_slice(&questions.to_be_bytes());
    out[6..8].copy_from_slice(&(addresses.len() as u16).to_be_bytes());
    out[8..12].fill(0);
    for address in addresses {
        // The name: a pointer to the question's, at offset 12.
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&address.octets());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, kind: u16) -> Vec<u8> {
        let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&kind.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[test]
    fn localhost_resolves_to_the_loopback_address() {
        let message = query("localhost", TYPE_A);
        let parsed = parse(&message).unwrap().unwrap();
        assert_eq!(parsed.name, "localhost");
        let answer = resolve(&message, &parsed);
        assert_eq!(answer[..2], [0xab, 0xcd], "the query's id");
        assert_eq!(answer[2] & 0x80, 0x80, "a response");
        assert_eq!(answer[3] & 0xf, 0, "NOERROR");
        assert!(u16::from_be_bytes([answer[6], answer[7]]) >= 1);
        let first = &answer[message.len()..];
        assert_eq!(first[..4], [0xc0, 0x0c, 0, 1]);
        assert_eq!(first[12..16], [127, 0, 0, 1]);
    }

    #[test]
    fn unknown_names_and_odd_queries_get_error_codes() {
        let message = query("no-such-host.invalid", TYPE_A);
        let answer = resolve(&message, &parse(&message).unwrap().unwrap());
        assert_eq!(answer[3] & 0xf, RCODE_NAME_ERROR as u8);
        // AAAA: an empty answer.
        let message = query("localhost", 28);
        let answer = resolve(&message, &parse(&message).unwrap().unwrap());
        assert_eq!((answer[3] & 0xf, answer[7]), (0, 0));
        // Truncated questions and two questions: format errors.
        let mut two = query("a", TYPE_A);
        two[5] = 2;
        assert_eq!(parse(&two).unwrap_err()[3] & 0xf, RCODE_FORMAT_ERROR as u8);
        let cut = &query("localhost", TYPE_A)[..15];
        assert_eq!(parse(cut).unwrap_err()[3] & 0xf, RCODE_FORMAT_ERROR as u8);
        assert_eq!(parse(&[0u8; 5]), Ok(None));
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 53 + 1) as u8).collect();
            let _ = parse(&junk);
        }
    }
}
