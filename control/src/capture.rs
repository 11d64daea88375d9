//! Packet capture (`capture_start`): the request's bounds with their named defaults and maximums,
//! and the filter the workers run on each frame of a port while a capture is on.
//!
//! Pure logic, no DPDK: the daemon's workers call [`Matcher::matches`] on each frame's bytes, the
//! control thread checks a request with [`CaptureRequest::validate`]. See docs/api.md.
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::config::Proto;

/// Packets one capture keeps when `max_packets` is not given.
pub const DEFAULT_MAX_PACKETS: u64 = 1000;
/// Largest `max_packets` accepted.
pub const MAX_MAX_PACKETS: u64 = 10_000_000;
/// Captured bytes (the packets' stored bytes, without pcap headers) when `max_bytes` is not given.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Largest `max_bytes` accepted (1 GiB).
pub const MAX_MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// Bytes kept of each frame when `snaplen` is not given.
pub const DEFAULT_SNAPLEN: u32 = 2048;
/// Largest `snaplen`: the size of one hand-over record, which holds a whole standard frame.
pub const MAX_SNAPLEN: u32 = 2048;
/// Smallest `snaplen`: an Ethernet and an IPv4 header.
pub const MIN_SNAPLEN: u32 = 34;

/// Which way the captured frames travel through the port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// What the port receives, before the dataplane sees it.
    Rx,
    /// What the port sends, right before it is handed to the NIC.
    Tx,
    /// Both.
    #[default]
    Both,
}

impl Direction {
    pub fn rx(self) -> bool {
        matches!(self, Direction::Rx | Direction::Both)
    }
    pub fn tx(self) -> bool {
        matches!(self, Direction::Tx | Direction::Both)
    }
}

/// The filter as requested: every field given must match (and), an empty filter matches all frames.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureFilter {
    /// An IPv4 address: the frame's source or destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A TCP or UDP port: the frame's source or destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `tcp` or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
}

/// `capture_start`'s fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// The port's name, as in the config file's `[[ports]]`.
    pub port: String,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub filter: CaptureFilter,
    /// Stop after this many packets (default [`DEFAULT_MAX_PACKETS`], at most [`MAX_MAX_PACKETS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_packets: Option<u64>,
    /// Stop before the captured bytes exceed this (default [`DEFAULT_MAX_BYTES`], at most
    /// [`MAX_MAX_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Bytes kept of each frame (default [`DEFAULT_SNAPLEN`], [`MIN_SNAPLEN`] to [`MAX_SNAPLEN`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snaplen: Option<u32>,
    /// The pcap file rvsd writes (created or truncated), an absolute path.
    pub file: String,
}

/// A checked request: the bounds resolved, the filter typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_packets: u64,
    pub max_bytes: u64,
    pub snaplen: u32,
}

impl CaptureRequest {
    /// The bounds and the matcher, or a one-line refusal naming the field.
    pub fn validate(&self) -> Result<(Bounds, Matcher), String> {
        let max_packets = self.max_packets.unwrap_or(DEFAULT_MAX_PACKETS);
        if max_packets == 0 || max_packets > MAX_MAX_PACKETS {
            return Err(format!("capture: max_packets must be 1 to {MAX_MAX_PACKETS}, not {max_packets}"));
        }
        let max_bytes = self.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        if max_bytes == 0 || max_bytes > MAX_MAX_BYTES {
            return Err(format!("capture: max_bytes must be 1 to {MAX_MAX_BYTES}, not {max_bytes}"));
        }
        let snaplen = self.snaplen.unwrap_or(DEFAULT_SNAPLEN);
        if !(MIN_SNAPLEN..=MAX_SNAPLEN).contains(&snaplen) {
            return Err(format!("capture: snaplen must be {MIN_SNAPLEN} to {MAX_SNAPLEN}, not {snaplen}"));
        }
        if !self.file.starts_with('/') {
            return Err(format!("capture: file must be an absolute path, not {:?}", self.file));
        }
        Ok((Bounds { max_packets, max_bytes, snaplen }, Matcher::new(&self.filter)?))
    }
}

/// The typed filter the workers run: all `None` matches every frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Matcher {
    pub host: Option<[u8; 4]>,
    pub port: Option<u16>,
    /// IP protocol number (6 or 17).
    pub proto: Option<u8>,
}

const ETH_HDR: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;

impl Matcher {
    pub fn new(f: &CaptureFilter) -> Result<Matcher, String> {
        let host = match &f.host {
            None => None,
            Some(h) => Some(
                h.parse::<Ipv4Addr>()
                    .map_err(|_| format!("capture: filter.host must be an IPv4 address, not {h:?}"))?
                    .octets(),
            ),
        };
        if f.port == Some(0) {
            return Err("capture: filter.port must be 1 to 65535, not 0".into());
        }
        let proto = f.proto.map(|p| match p {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        });
        Ok(Matcher { host, port: f.port, proto })
    }

    /// True when no field is set: every frame matches, nothing is parsed.
    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.port.is_none() && self.proto.is_none()
    }

    /// Whether an Ethernet frame matches. With any field set, only IPv4 frames can match; a port
    /// matches only TCP or UDP in the first fragment.
    pub fn matches(&self, frame: &[u8]) -> bool {
        if self.is_empty() {
            return true;
        }
        if frame.len() < ETH_HDR + 20 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
            return false;
        }
        let ip = &frame[ETH_HDR..];
        if ip[0] >> 4 != 4 {
            return false;
        }
        let ihl = ((ip[0] & 0x0f) as usize) * 4;
        let proto = ip[9];
        if let Some(p) = self.proto {
            if p != proto {
                return false;
            }
        }
        if let Some(h) = self.host {
            if ip[12..16] != h && ip[16..20] != h {
                return false;
            }
        }
        if let Some(port) = self.port {
            let first_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff == 0;
            if !(proto == 6 || proto == 17) || !first_fragment || ihl < 20 || ip.len() < ihl + 4 {
                return false;
            }
            let l4 = &ip[ihl..];
            let (src, dst) = (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]));
            if src != port && dst != port {
                return false;
            }
        }
        true
    }
}

/// `capture_status`: the current or last capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureStatus {
    /// `idle` (none since start-up), `running` or `finished`.
    pub state: String,
    #[serde(default)]
    pub port: String,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub file: String,
    /// Packets written to the file.
    #[serde(default)]
    pub packets: u64,
    /// Their captured bytes (without pcap headers).
    #[serde(default)]
    pub bytes: u64,
    /// Matching frames not captured because the hand-over queue to the writer was full.
    #[serde(default)]
    pub dropped: u64,
    /// Why it finished: `max_packets`, `max_bytes`, `stopped`, or a write error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl CaptureStatus {
    /// One line for `rvsadm --capture-status`.
    pub fn line(&self) -> String {
        if self.state == "idle" {
            return "capture idle: none since rvsd started\n".into();
        }
        let dir = match self.direction {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
            Direction::Both => "both",
        };
        let why = self.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        format!(
            "capture {}{why}: port {} {dir} -> {}: {} packets, {} bytes, {} dropped\n",
            self.state, self.port, self.file, self.packets, self.bytes, self.dropped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 (+ 4 bytes of ports) from src to dst.
    fn frame(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16, frag: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 6..14 + 8].copy_from_slice(&frag.to_be_bytes());
        f[14 + 9] = proto;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    fn m(host: Option<&str>, port: Option<u16>, proto: Option<Proto>) -> Matcher {
        Matcher::new(&CaptureFilter { host: host.map(Into::into), port, proto }).unwrap()
    }

    const LIP: [u8; 4] = [198, 18, 1, 100];
    const RS: [u8; 4] = [198, 18, 1, 11];

    #[test]
    fn filter_matches_host_port_and_proto_either_way() {
        let to_rs = frame(LIP, RS, 6, 40000, 80, 0);
        let from_rs = frame(RS, LIP, 6, 80, 40000, 0);
        assert!(m(None, None, None).matches(&to_rs));
        assert!(m(None, None, None).matches(&[1, 2, 3]), "an empty filter takes everything");
        for f in [&to_rs, &from_rs] {
            assert!(m(Some("198.18.1.11"), None, None).matches(f));
            assert!(m(Some("198.18.1.100"), Some(80), Some(Proto::Tcp)).matches(f));
            assert!(m(None, Some(40000), None).matches(f));
            assert!(!m(Some("198.18.1.12"), None, None).matches(f));
            assert!(!m(None, Some(81), None).matches(f));
            assert!(!m(None, None, Some(Proto::Udp)).matches(f));
        }
        let udp = frame(LIP, RS, 17, 5000, 53, 0);
        assert!(m(None, Some(53), Some(Proto::Udp)).matches(&udp));
        assert!(!m(None, Some(53), Some(Proto::Tcp)).matches(&udp));
    }

    #[test]
    fn filter_refuses_what_it_cannot_read() {
        let mut arp = frame(LIP, RS, 6, 1, 80, 0);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(!m(Some("198.18.1.100"), None, None).matches(&arp), "not IPv4");
        assert!(!m(Some("198.18.1.100"), None, None).matches(&arp[..20]), "truncated");
        let icmp = frame(LIP, RS, 1, 80, 80, 0);
        assert!(m(Some("198.18.1.11"), None, None).matches(&icmp));
        assert!(!m(None, Some(80), None).matches(&icmp), "ports only in TCP and UDP");
        let later_fragment = frame(LIP, RS, 6, 80, 80, 10);
        assert!(!m(None, Some(80), None).matches(&later_fragment), "no ports past the first fragment");
        assert!(m(Some("198.18.1.11"), None, None).matches(&later_fragment));
    }

    fn req(json: &str) -> Result<(Bounds, Matcher), String> {
        let r: CaptureRequest = serde_json::from_str(json).map_err(|e| e.to_string())?;
        r.validate()
    }

    #[test]
    fn bounds_have_defaults_and_maximums() {
        let (b, f) = req(r#"{"port":"server","file":"/tmp/x.pcap"}"#).unwrap();
        assert_eq!(
            b,
            Bounds {
                max_packets: DEFAULT_MAX_PACKETS,
                max_bytes: DEFAULT_MAX_BYTES,
                snaplen: DEFAULT_SNAPLEN
            }
        );
        assert!(f.is_empty());
        let (b, _) = req(&format!(
            r#"{{"port":"s","file":"/x","max_packets":{MAX_MAX_PACKETS},"max_bytes":{MAX_MAX_BYTES},"snaplen":{MIN_SNAPLEN}}}"#
        ))
        .unwrap();
        assert_eq!((b.max_packets, b.max_bytes, b.snaplen), (MAX_MAX_PACKETS, MAX_MAX_BYTES, MIN_SNAPLEN));
        for (json, msg) in [
            (r#"{"port":"s","file":"/x","max_packets":0}"#, "max_packets must be 1 to"),
            (r#"{"port":"s","file":"/x","max_packets":10000001}"#, "max_packets must be 1 to"),
            (r#"{"port":"s","file":"/x","max_bytes":1073741825}"#, "max_bytes must be 1 to"),
            (r#"{"port":"s","file":"/x","snaplen":2049}"#, "snaplen must be 34 to 2048"),
            (r#"{"port":"s","file":"/x","snaplen":10}"#, "snaplen must be 34 to 2048"),
            (r#"{"port":"s","file":"x.pcap"}"#, "absolute path"),
            (r#"{"port":"s","file":"/x","filter":{"host":"1.2.3"}}"#, "filter.host must be an IPv4 address"),
            (r#"{"port":"s","file":"/x","filter":{"port":0}}"#, "filter.port must be 1 to 65535"),
            (r#"{"port":"s","file":"/x","filter":{"port":70000}}"#, "invalid value"),
            (r#"{"port":"s","file":"/x","filter":{"proto":"sctp"}}"#, "unknown protocol"),
            (r#"{"port":"s","file":"/x","filter":{"vlan":3}}"#, "unknown field"),
        ] {
            let e = req(json).unwrap_err();
            assert!(e.contains(msg), "{json}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn direction_names() {
        assert!(Direction::Rx.rx() && !Direction::Rx.tx());
        assert!(Direction::Both.rx() && Direction::Both.tx());
        assert_eq!(serde_json::to_string(&Direction::Tx).unwrap(), r#""tx""#);
    }
}
