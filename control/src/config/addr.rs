//! Addresses, prefixes, `ADDR:port` endpoints and port devices as the configuration writes them.
use super::*;

/// An IPv4 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }

    /// The prefix with the host bits cleared (`198.18.0.1/24` is on `198.18.0.0/24`).
    pub fn network(&self) -> Cidr {
        Cidr { addr: (u32::from(self.addr) & self.mask()).into(), len: self.len }
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        (u32::from(a) & self.mask()) == (u32::from(self.addr) & self.mask())
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, l) = s.split_once('/').ok_or_else(|| format!("\"{s}\" is not ADDRESS/PREFIXLEN"))?;
        let addr = Ipv4Addr::from_str(a).map_err(|_| format!("\"{a}\" is not an IPv4 address"))?;
        let len =
            u8::from_str(l).ok().filter(|l| *l <= 32).ok_or_else(|| format!("bad prefix length \"{l}\""))?;
        Ok(Cidr { addr, len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// An IPv6 prefix (a port's `addr6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr6 {
    pub addr: Ipv6Addr,
    pub len: u8,
}

impl Cidr6 {
    pub fn mask(&self) -> u128 {
        if self.len == 0 {
            0
        } else {
            u128::MAX << (128 - self.len)
        }
    }

    /// The prefix with the host bits cleared.
    pub fn network(&self) -> Cidr6 {
        Cidr6 { addr: (u128::from(self.addr) & self.mask()).into(), len: self.len }
    }

    pub fn contains(&self, a: Ipv6Addr) -> bool {
        (u128::from(a) & self.mask()) == (u128::from(self.addr) & self.mask())
    }
}

impl FromStr for Cidr6 {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr6, String> {
        let (a, l) = s.split_once('/').ok_or_else(|| format!("\"{s}\" is not ADDRESS/PREFIXLEN"))?;
        let addr = Ipv6Addr::from_str(a).map_err(|_| format!("\"{a}\" is not an IPv6 address"))?;
        let len =
            u8::from_str(l).ok().filter(|l| *l <= 128).ok_or_else(|| format!("bad prefix length \"{l}\""))?;
        Ok(Cidr6 { addr, len })
    }
}

impl fmt::Display for Cidr6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A prefix of either family (a route's `dst`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prefix {
    V4(Cidr),
    V6(Cidr6),
}

impl Prefix {
    pub fn addr(&self) -> IpAddr {
        match self {
            Prefix::V4(c) => c.addr.into(),
            Prefix::V6(c) => c.addr.into(),
        }
    }

    pub fn prefix_len(&self) -> u8 {
        match self {
            Prefix::V4(c) => c.len,
            Prefix::V6(c) => c.len,
        }
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        match (self, a) {
            (Prefix::V4(c), IpAddr::V4(a)) => c.contains(a),
            (Prefix::V6(c), IpAddr::V6(a)) => c.contains(a),
            _ => false,
        }
    }

    pub fn network(&self) -> Prefix {
        match self {
            Prefix::V4(c) => Prefix::V4(c.network()),
            Prefix::V6(c) => Prefix::V6(c.network()),
        }
    }
}

impl FromStr for Prefix {
    type Err = String;
    /// An IPv6 prefix when the address holds a `:`, an IPv4 one otherwise.
    fn from_str(s: &str) -> Result<Prefix, String> {
        if s.split('/').next().unwrap_or_default().contains(':') {
            Cidr6::from_str(s).map(Prefix::V6)
        } else {
            Cidr::from_str(s).map(Prefix::V4)
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prefix::V4(c) => c.fmt(f),
            Prefix::V6(c) => c.fmt(f),
        }
    }
}

/// The family of an address, for error messages.
pub fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Parses an address of either family: `A.B.C.D` or an IPv6 address, bare or in brackets.
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let inner = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    IpAddr::from_str(inner).map_err(|_| format!("\"{s}\" is not an IPv4 or IPv6 address"))
}

/// Parses `A.B.C.D:PORT` or `[IPv6]:PORT` (ipvsadm's spellings) with a non-zero port.
pub fn parse_endpoint(s: &str) -> Result<(IpAddr, u16), String> {
    let (a, p) = s.rsplit_once(':').ok_or_else(|| format!("\"{s}\" is not ADDRESS:PORT"))?;
    let addr = if let Some(v6) = a.strip_prefix('[') {
        let v6 = v6.strip_suffix(']').ok_or_else(|| format!("\"{s}\" is not [IPv6]:PORT"))?;
        IpAddr::V6(Ipv6Addr::from_str(v6).map_err(|_| format!("\"{v6}\" is not an IPv6 address"))?)
    } else if a.contains(':') {
        return Err(format!("\"{s}\": write an IPv6 service as [ADDRESS]:PORT"));
    } else {
        IpAddr::V4(Ipv4Addr::from_str(a).map_err(|_| format!("\"{a}\" is not an IPv4 address"))?)
    };
    let port = u16::from_str(p).ok().filter(|p| *p != 0).ok_or_else(|| format!("bad port \"{p}\""))?;
    Ok((addr, port))
}

/// `A.B.C.D:PORT` or `[IPv6]:PORT`, the spelling [`parse_endpoint`] reads and ipvsadm prints.
pub fn endpoint(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// vdev drivers rvs knows how to drive; anything else is refused before DPDK sees it.
pub const KNOWN_VDEVS: &[&str] = &[
    "net_af_packet",
    "net_af_xdp",
    "net_tap",
    "net_memif",
    "net_ring",
    "net_null",
    "net_pcap",
    "net_virtio_user",
];

/// What a `device` string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceKind {
    Pci(String),
    /// Driver name (`net_af_packet`), instance name (`net_af_packet0`), and the `key=value` arguments.
    Vdev {
        driver: String,
        name: String,
        args: Vec<(String, String)>,
    },
}

pub fn parse_device(s: &str) -> Result<DeviceKind, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty device".into());
    }
    if is_pci_addr(s) {
        return Ok(DeviceKind::Pci(s.to_owned()));
    }
    let mut parts = s.split(',');
    let name = parts.next().unwrap_or_default().to_owned();
    let driver = name.trim_end_matches(|c: char| c.is_ascii_digit()).to_owned();
    if !KNOWN_VDEVS.contains(&driver.as_str()) {
        return Err(format!(
            "unknown device \"{name}\" (a PCI address or one of {})",
            KNOWN_VDEVS.join(", ")
        ));
    }
    if driver == name {
        return Err(format!("vdev \"{name}\" needs an instance number, e.g. {driver}0"));
    }
    let mut args = Vec::new();
    for kv in parts {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("vdev argument \"{kv}\" is not key=value"))?;
        args.push((k.to_owned(), v.to_owned()));
    }
    Ok(DeviceKind::Vdev { driver, name, args })
}

fn is_pci_addr(s: &str) -> bool {
    // DDDD:BB:DD.F or BB:DD.F, hex digits.
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let (head, func) = match s.rsplit_once('.') {
        Some(x) => x,
        None => return false,
    };
    if !(func.len() == 1 && func.chars().all(|c| c.is_digit(8))) {
        return false;
    }
    let f: Vec<&str> = head.split(':').collect();
    match f.as_slice() {
        [d, b, dev] => hex(d, 4) && hex(b, 2) && hex(dev, 2),
        [b, dev] => hex(b, 2) && hex(dev, 2),
        _ => false,
    }
}
