//! Static routing: connected prefixes of the ports plus configured routes, longest prefix first.
//!
//! The table is tiny (a handful of entries on a gateway), so a linear scan over entries sorted by
//! prefix length beats any trie; it is built once per configuration. It is generic over the
//! address family ([`Addr`]; IPv4 by default): prefixes are compared as integers.
use std::net::Ipv4Addr;

use crate::flow::{prefix_mask, Addr};
use crate::service::FromIp;
use crate::setup::{PortSetup, RouteSetup};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry<A: Addr> {
    net: u128,
    mask: u128,
    len: u8,
    port: usize,
    /// None for a connected prefix: the destination itself is the next hop.
    via: Option<A>,
}

#[derive(Debug, Clone)]
pub struct Routes<A: Addr = Ipv4Addr> {
    entries: Vec<Entry<A>>,
}

impl<A: Addr> Default for Routes<A> {
    fn default() -> Self {
        Routes { entries: Vec::new() }
    }
}

/// A port's address and prefix of family `A`, if it has one.
pub trait PortAddr: FromIp {
    fn of_port(p: &PortSetup) -> Option<(Self, u8)>;
}

impl PortAddr for Ipv4Addr {
    fn of_port(p: &PortSetup) -> Option<(Ipv4Addr, u8)> {
        Some((p.addr, p.prefix_len))
    }
}

impl PortAddr for std::net::Ipv6Addr {
    fn of_port(p: &PortSetup) -> Option<(std::net::Ipv6Addr, u8)> {
        p.addr6.map(|a| (a, p.prefix6_len))
    }
}

impl<A: Addr> Routes<A> {
    /// Adds `net/len` out of `port`, via `via` (None: connected). Longest prefixes stay first.
    pub fn add(&mut self, net: A, len: u8, port: usize, via: Option<A>) {
        let m = prefix_mask::<A>(len);
        self.entries.push(Entry { net: net.to_u128() & m, mask: m, len, port, via });
        self.entries.sort_by_key(|e| std::cmp::Reverse(e.len));
    }

    /// The port and next hop for `dst`.
    #[inline]
    pub fn lookup(&self, dst: A) -> Option<(usize, A)> {
        let d = dst.to_u128();
        self.entries.iter().find(|e| d & e.mask == e.net).map(|e| (e.port, e.via.unwrap_or(dst)))
    }
}

impl<A: PortAddr> Routes<A> {
    /// Connected prefixes from the ports' addresses of family `A`, then each static route of that
    /// family on the port whose prefix holds its next hop (routes whose next hop is on no port are
    /// skipped; the config validation refuses them, as it refuses routes mixing families).
    pub fn new(ports: &[PortSetup], routes: &[RouteSetup]) -> Routes<A> {
        let mut t = Routes::default();
        for (i, p) in ports.iter().enumerate() {
            if let Some((a, len)) = A::of_port(p) {
                t.add(a, len, i, None);
            }
        }
        for r in routes {
            let (Some(dst), Some(via)) = (A::from_ip(r.dst), A::from_ip(r.via)) else { continue };
            let Some(port) = ports.iter().position(|p| {
                A::of_port(p).is_some_and(|(a, len)| {
                    let pm = prefix_mask::<A>(len);
                    a.to_u128() & pm == via.to_u128() & pm
                })
            }) else {
                continue;
            };
            t.add(dst, r.prefix_len, port, Some(via));
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn ipv6_longest_prefix_wins() {
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let mut t: Routes<Ipv6Addr> = Routes::default();
        t.add(a("::"), 0, 0, Some(a("2001:2::fe")));
        t.add(a("2001:2::"), 64, 0, None);
        t.add(a("2001:2:0:1::"), 64, 1, None);
        t.add(a("2001:2:0:1:8000::"), 65, 1, Some(a("2001:2:0:1::fe")));
        assert_eq!(t.lookup(a("2001:2::11")), Some((0, a("2001:2::11"))));
        assert_eq!(t.lookup(a("2001:2:0:1::11")), Some((1, a("2001:2:0:1::11"))));
        assert_eq!(t.lookup(a("2001:2:0:1:8000::1")), Some((1, a("2001:2:0:1::fe"))));
        assert_eq!(t.lookup(a("2001:db8::1")), Some((0, a("2001:2::fe"))));
        let mut host: Routes<Ipv6Addr> = Routes::default();
        host.add(a("2001:2::5"), 128, 3, None);
        assert_eq!(host.lookup(a("2001:2::5")), Some((3, a("2001:2::5"))));
        assert_eq!(host.lookup(a("2001:2::6")), None);
    }
    use crate::wire::EthernetAddress;

    fn port(addr: &str, len: u8) -> PortSetup {
        PortSetup {
            name: "p".into(),
            mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
            addr: addr.parse().unwrap(),
            prefix_len: len,
            addr6: None,
            prefix6_len: 0,
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
        let r: Routes = Routes::new(&ports, &routes);
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(r.lookup(ip("198.18.0.7")), Some((0, ip("198.18.0.7"))));
        assert_eq!(r.lookup(ip("198.18.1.9")), Some((1, ip("198.18.1.9"))));
        assert_eq!(r.lookup(ip("198.19.3.3")), Some((1, ip("198.18.1.254"))));
        assert_eq!(r.lookup(ip("203.0.113.1")), Some((0, ip("198.18.0.254"))));
        // the route via an unreachable next hop was skipped
        assert_eq!(r.lookup(ip("10.1.1.1")), Some((0, ip("198.18.0.254"))));
        let no_default: Routes = Routes::new(&ports, &[]);
        let v6: Routes<std::net::Ipv6Addr> = Routes::new(&ports, &routes);
        assert_eq!(v6.lookup("2001:2::1".parse().unwrap()), None, "no IPv6 address, no IPv6 routes");
        assert_eq!(no_default.lookup(ip("203.0.113.1")), None);
    }
}
