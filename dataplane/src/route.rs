//! Static routing: connected prefixes of the ports plus configured routes, longest prefix first.
//!
//! The table is tiny (a handful of entries on a gateway), so a linear scan over entries sorted by
//! prefix length beats any trie; it is built once per configuration.
use std::net::Ipv4Addr;

use crate::setup::{PortSetup, RouteSetup};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    net: u32,
    mask: u32,
    len: u8,
    port: usize,
    /// None for a connected prefix: the destination itself is the next hop.
    via: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Default)]
pub struct Routes {
    entries: Vec<Entry>,
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

impl Routes {
    /// Connected prefixes from the ports, then each static route on the port whose prefix holds its
    /// next hop (routes whose next hop is on no port are skipped; the config validation refuses them).
    pub fn new(ports: &[PortSetup], routes: &[RouteSetup]) -> Routes {
        let mut entries = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let m = mask(p.prefix_len);
            entries.push(Entry {
                net: u32::from(p.addr) & m,
                mask: m,
                len: p.prefix_len,
                port: i,
                via: None,
            });
        }
        for r in routes {
            let m = mask(r.prefix_len);
            let Some(port) = ports.iter().position(|p| {
                let pm = mask(p.prefix_len);
                u32::from(p.addr) & pm == u32::from(r.via) & pm
            }) else {
                continue;
            };
            entries.push(Entry {
                net: u32::from(r.dst) & m,
                mask: m,
                len: r.prefix_len,
                port,
                via: Some(r.via),
            });
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.len));
        Routes { entries }
    }

    /// The port and next hop for `dst`.
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<(usize, Ipv4Addr)> {
        let d = u32::from(dst);
        self.entries.iter().find(|e| d & e.mask == e.net).map(|e| (e.port, e.via.unwrap_or(dst)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::EthernetAddress;

    fn port(addr: &str, len: u8) -> PortSetup {
        PortSetup {
            name: "p".into(),
            mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
            addr: addr.parse().unwrap(),
            prefix_len: len,
            mtu: 1500,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let ports = [port("198.18.0.1", 24), port("198.18.1.1", 24)];
        let routes = [
            RouteSetup {
                dst: "0.0.0.0".parse().unwrap(),
                prefix_len: 0,
                via: "198.18.0.254".parse().unwrap(),
            },
            RouteSetup {
                dst: "198.19.0.0".parse().unwrap(),
                prefix_len: 16,
                via: "198.18.1.254".parse().unwrap(),
            },
            RouteSetup { dst: "10.0.0.0".parse().unwrap(), prefix_len: 8, via: "192.0.2.1".parse().unwrap() },
        ];
        let r = Routes::new(&ports, &routes);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(r.lookup(ip("198.18.0.7")), Some((0, ip("198.18.0.7"))));
        assert_eq!(r.lookup(ip("198.18.1.9")), Some((1, ip("198.18.1.9"))));
        assert_eq!(r.lookup(ip("198.19.3.3")), Some((1, ip("198.18.1.254"))));
        assert_eq!(r.lookup(ip("203.0.113.1")), Some((0, ip("198.18.0.254"))));
        // the route via an unreachable next hop was skipped
        assert_eq!(r.lookup(ip("10.1.1.1")), Some((0, ip("198.18.0.254"))));
        let no_default = Routes::new(&ports, &[]);
        assert_eq!(no_default.lookup(ip("203.0.113.1")), None);
    }
}
