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

/// Parses `A.B.C.D:PORT` with a non-zero port.
pub fn parse_endpoint(s: &str) -> Result<(Ipv4Addr, u16), String> {
    let (a, p) = s.rsplit_once(':').ok_or_else(|| format!("\"{s}\" is not ADDRESS:PORT"))?;
    let addr = Ipv4Addr::from_str(a).map_err(|_| format!("\"{a}\" is not an IPv4 address"))?;
    let port = u16::from_str(p).ok().filter(|p| *p != 0).ok_or_else(|| format!("bad port \"{p}\""))?;
    Ok((addr, port))
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
