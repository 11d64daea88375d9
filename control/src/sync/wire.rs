//! The IPVS sync protocol, version 1, on the wire (Linux `net/netfilter/ipvs/ip_vs_sync.c`), with
//! rvs's FULLNAT and SYN-proxy extras as typed options. I/O-free: bytes in, bytes out.
//!
//! Layout (all big endian; docs/ha.md "Connection sync" has the tables):
//! - message header, 8 bytes (`struct ip_vs_sync_mesg`): reserved 0, syncid, size (whole message,
//!   header and padding included), nr_conns, version 1, spare 0;
//! - `nr_conns` entries (`struct ip_vs_sync_v4`, 36 bytes, or `_v6`, 72 bytes), each followed by
//!   its options `type, len, data`; an entry's `ver_size` holds its own length (options included,
//!   padding not) in the low 12 bits and version 0 in the top 4; the next entry starts at the next
//!   4-byte boundary, the gap zero-filled (the kernel's `pad`).
//!
//! Options: `IPVS_OPT_SEQ_DATA` (1, 24 bytes: in_seq and out_seq, each init_seq/delta/
//! previous_delta) is the kernel's; `IPVS_OPT_PE_DATA`/`_PE_NAME` (2, 3) are checked as the kernel
//! checks them and then ignored (rvs has no persistence engines). rvs's own options have
//! `IPVS_OPT_F_PARAM` (0x40) set, so a kernel backup skips them as optional instead of dropping
//! the entry, and live in 0x61..=0x64; each starts with its own version byte.
//!
//! The full-table request (an rvs extension, sent by a backup that starts late) is a header with
//! `nr_conns = 0` followed by the 4 bytes `'R' 'Q' 1 0`; a kernel master ignores it.
//!
//! Invariants:
//! - [`decode`] never panics and never reads outside its input: every length is checked before
//!   it is used, and each failure is one [`WireError`] variant.
//! - [`MessageBuf`] never grows past the `max_len` it was made with (no allocation after `new`)
//!   and every message it finishes decodes back to the entries pushed.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `SYNC_PROTO_VER`.
pub const SYNC_PROTO_VER: u8 = 1;
/// `sizeof(struct ip_vs_sync_mesg)`.
pub const HEADER_LEN: usize = 8;
/// `sizeof(struct ip_vs_sync_v4)`.
pub const V4_LEN: usize = 36;
/// `sizeof(struct ip_vs_sync_v6)`.
pub const V6_LEN: usize = 72;
/// `STYPE_F_INET6`.
pub const STYPE_F_INET6: u8 = 1;
/// `SVER_SHIFT` / `SVER_MASK`: version in the top 4 bits of `ver_size`, size in the low 12.
pub const SVER_SHIFT: u16 = 12;
pub const SVER_MASK: u16 = 0x0fff;
/// IP + UDP headers in front of a message (`hlen` for IPv4).
pub const IPV4_UDP_HLEN: usize = 28;

pub const OPT_SEQ_DATA: u8 = 1;
pub const OPT_PE_DATA: u8 = 2;
pub const OPT_PE_NAME: u8 = 3;
/// Set in an option's type: a receiver that does not know it skips it.
pub const OPT_F_PARAM: u8 = 0x40;
/// `sizeof(struct ip_vs_sync_conn_options)`.
pub const SEQ_DATA_LEN: usize = 24;
/// `IP_VS_PEDATA_MAXLEN`, `IP_VS_PENAME_MAXLEN`.
pub const PE_DATA_MAX: usize = 255;
pub const PE_NAME_MAX: usize = 16;

/// rvs: the forwarding extras (mode, local address and port, client-address insertion done).
pub const OPT_RVS_CONN: u8 = OPT_F_PARAM | 0x21;
/// rvs: SYN-proxied, with the timestamp shift (the sequence shift is in `OPT_SEQ_DATA`).
pub const OPT_RVS_SYNPROXY: u8 = OPT_F_PARAM | 0x22;
/// rvs: PROXY protocol header length, where it went, whether it was acknowledged.
pub const OPT_RVS_PROXY: u8 = OPT_F_PARAM | 0x23;
/// rvs: the connection left the master's table; remove it.
pub const OPT_RVS_RELEASE: u8 = OPT_F_PARAM | 0x24;
/// The version every rvs option of this build writes and the only one it reads.
pub const RVS_OPT_VERSION: u8 = 1;
/// Lengths (after type and len) of the rvs options, version 1: conn for an IPv4 / IPv6 local address.
pub const RVS_CONN_LEN_V4: usize = 8;
pub const RVS_CONN_LEN_V6: usize = 20;
pub const RVS_SYNPROXY_LEN: usize = 8;
pub const RVS_PROXY_LEN: usize = 8;
pub const RVS_RELEASE_LEN: usize = 2;

/// `IP_VS_CONN_F_*` flags carried in an entry.
pub mod flags {
    pub const FWD_MASK: u32 = 0x0007;
    pub const MASQ: u32 = 0x0000;
    pub const TUNNEL: u32 = 0x0002;
    pub const DROUTE: u32 = 0x0003;
    /// DPVS's `IP_VS_CONN_F_FULLNAT` (the kernel has no FULLNAT).
    pub const FULLNAT: u32 = 0x0005;
    pub const SYNC: u32 = 0x0020;
    pub const HASHED: u32 = 0x0040;
    pub const NOOUTPUT: u32 = 0x0080;
    pub const INACTIVE: u32 = 0x0100;
    pub const OUT_SEQ: u32 = 0x0200;
    pub const IN_SEQ: u32 = 0x0400;
    pub const SEQ_MASK: u32 = 0x0600;
    pub const TEMPLATE: u32 = 0x1000;
}

/// Bytes of the full-table request after its header.
pub const REQUEST_BODY: [u8; 4] = [b'R', b'Q', 1, 0];

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message shorter than its {HEADER_LEN}-byte header ({0} bytes)")]
    ShortHeader(usize),
    #[error("header size {header} differs from the datagram's {actual} bytes")]
    SizeMismatch { header: u16, actual: usize },
    #[error("not a version 1 message (reserved {reserved}, version {version}, spare {spare})")]
    NotVersion1 { reserved: u8, version: u8, spare: u16 },
    #[error("entry {0} runs past the end of the message")]
    Truncated(u8),
    #[error("entry {index} has version {version} (only 0 is defined)")]
    EntryVersion { index: u8, version: u8 },
    #[error("entry {index} has unknown type {ty}")]
    EntryType { index: u8, ty: u8 },
    #[error("entry {index} is {size} bytes, shorter than its fixed part")]
    EntryTooShort { index: u8, size: u16 },
    #[error("entry {index}: option {opt} is malformed (zero or overlong length)")]
    OptionLength { index: u8, opt: u8 },
    #[error("entry {index}: option {opt} appears twice")]
    OptionTwice { index: u8, opt: u8 },
    #[error("entry {index}: unknown mandatory option {opt}")]
    OptionUnknown { index: u8, opt: u8 },
    #[error("entry {index}: rvs option {opt} has version {version}, this build reads {RVS_OPT_VERSION}")]
    OptionVersion { index: u8, opt: u8, version: u8 },
    #[error("entry {0}: address families disagree")]
    Family(u8),
    #[error("bytes left over after the last entry")]
    Trailing,
    #[error("malformed full-table request")]
    BadRequest,
}

/// One direction's sequence adjustment (`struct ip_vs_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seq {
    pub init_seq: u32,
    pub delta: u32,
    pub previous_delta: u32,
}

/// `struct ip_vs_sync_conn_options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqData {
    pub in_seq: Seq,
    pub out_seq: Seq,
}

/// rvs option: the forwarding extras.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RvsConn {
    /// The local address and port (FULLNAT; unspecified otherwise).
    pub laddr: IpAddr,
    pub lport: u16,
    /// TOA option inserted / PROXY header sent (the conn's `toa_done`).
    pub toa_done: bool,
}

/// rvs option: SYN-proxy. The sequence shift itself is `SeqData::out_seq.delta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RvsSynproxy {
    pub ts_delta: Option<u32>,
}

/// rvs option: PROXY protocol state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RvsProxy {
    pub len: u8,
    pub acked: bool,
    pub start: u32,
}

/// One connection (or template) entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub protocol: u8,
    pub flags: u32,
    pub state: u16,
    pub cport: u16,
    pub vport: u16,
    pub dport: u16,
    pub fwmark: u32,
    /// Seconds.
    pub timeout: u32,
    pub caddr: IpAddr,
    pub vaddr: IpAddr,
    pub daddr: IpAddr,
    pub seq: Option<SeqData>,
    pub conn: Option<RvsConn>,
    pub synproxy: Option<RvsSynproxy>,
    pub proxy: Option<RvsProxy>,
    /// `Some(reason)`: the master released it (0 expired, 1 removed).
    pub release: Option<u8>,
    /// A persistence engine's data or name was present (checked, not kept).
    pub pe: bool,
}

impl Entry {
    fn is_v6(&self) -> bool {
        self.caddr.is_ipv6()
    }

    /// Bytes this entry takes, options included, padding not (the kernel's `len`).
    pub fn wire_len(&self) -> usize {
        let mut n = if self.is_v6() { V6_LEN } else { V4_LEN };
        if self.seq.is_some() {
            n += 2 + SEQ_DATA_LEN;
        }
        if let Some(c) = &self.conn {
            n += 2 + if c.laddr.is_ipv6() { RVS_CONN_LEN_V6 } else { RVS_CONN_LEN_V4 };
        }
        if self.synproxy.is_some() {
            n += 2 + RVS_SYNPROXY_LEN;
        }
        if self.proxy.is_some() {
            n += 2 + RVS_PROXY_LEN;
        }
        if self.release.is_some() {
            n += 2 + RVS_RELEASE_LEN;
        }
        n
    }
}

/// The message header's fields a receiver acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub syncid: u8,
    pub nr_conns: u8,
}

/// A decoded datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Conns(Header, Entries<'a>),
    /// A backup asks for the full table.
    Request {
        syncid: u8,
    },
}

/// The largest message for an interface MTU: the MTU less the IPv4 and UDP headers, at most what
/// the 16-bit size field holds.
pub fn max_message_len(mtu: u16) -> usize {
    (mtu as usize).saturating_sub(IPV4_UDP_HLEN).clamp(HEADER_LEN + V6_LEN + 64, u16::MAX as usize)
}

/// Decodes a datagram: the header checks of `ip_vs_process_message`; entries are decoded as
/// [`Entries`] is iterated.
pub fn decode(buf: &[u8]) -> Result<Message<'_>, WireError> {
    if buf.len() < HEADER_LEN {
        return Err(WireError::ShortHeader(buf.len()));
    }
    let size = be16(buf, 2);
    if size as usize != buf.len() {
        return Err(WireError::SizeMismatch { header: size, actual: buf.len() });
    }
    let (reserved, syncid, nr_conns, version, spare) = (buf[0], buf[1], buf[4], buf[5], be16(buf, 6));
    if reserved != 0 || version != SYNC_PROTO_VER || spare != 0 {
        return Err(WireError::NotVersion1 { reserved, version, spare });
    }
    if nr_conns == 0 && buf.len() > HEADER_LEN {
        return if buf[HEADER_LEN..] == REQUEST_BODY {
            Ok(Message::Request { syncid })
        } else {
            Err(WireError::BadRequest)
        };
    }
    Ok(Message::Conns(
        Header { syncid, nr_conns },
        Entries { buf, pos: HEADER_LEN, index: 0, left: nr_conns },
    ))
}

/// The entries of a message, decoded one by one. After the first error it yields nothing more
/// (the kernel drops the rest of a message at the first bad entry too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entries<'a> {
    buf: &'a [u8],
    pos: usize,
    index: u8,
    left: u8,
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            // Only zero padding may follow the last entry; anything else is a framing error.
            if self.pos < self.buf.len() {
                let rest = &self.buf[self.pos..];
                self.pos = self.buf.len();
                if rest.len() >= 4 || rest.iter().any(|&b| b != 0) {
                    return Some(Err(WireError::Trailing));
                }
            }
            return None;
        }
        let r = decode_entry(self.buf, self.pos, self.index);
        match r {
            Ok((e, size)) => {
                self.pos += (size + 3) & !3;
                self.pos = self.pos.min(self.buf.len());
                self.index = self.index.wrapping_add(1);
                self.left -= 1;
                Some(Ok(e))
            }
            Err(err) => {
                self.left = 0;
                self.pos = self.buf.len();
                Some(Err(err))
            }
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn addr4(b: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(be32(b, at)))
}

fn addr6(b: &[u8], at: usize) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    IpAddr::V6(Ipv6Addr::from(a))
}

fn seq_at(b: &[u8], at: usize) -> Seq {
    Seq { init_seq: be32(b, at), delta: be32(b, at + 4), previous_delta: be32(b, at + 8) }
}

/// One entry at `pos`: `ip_vs_process_message`'s size checks, then `ip_vs_proc_sync_conn`'s
/// option walk. Returns the entry and its size (unpadded).
fn decode_entry(buf: &[u8], pos: usize, index: u8) -> Result<(Entry, usize), WireError> {
    if pos + V4_LEN > buf.len() {
        return Err(WireError::Truncated(index));
    }
    let b = &buf[pos..];
    let ver_size = be16(b, 2);
    let size = (ver_size & SVER_MASK) as usize;
    if size > b.len() {
        return Err(WireError::Truncated(index));
    }
    if ver_size >> SVER_SHIFT != 0 {
        return Err(WireError::EntryVersion { index, version: (ver_size >> SVER_SHIFT) as u8 });
    }
    let b = &b[..size];
    let ty = b.first().copied().unwrap_or(0);
    let fixed = match ty {
        0 => V4_LEN,
        STYPE_F_INET6 => V6_LEN,
        _ => return Err(WireError::EntryType { index, ty }),
    };
    if size < fixed {
        return Err(WireError::EntryTooShort { index, size: size as u16 });
    }
    let (caddr, vaddr, daddr) = if fixed == V4_LEN {
        (addr4(b, 24), addr4(b, 28), addr4(b, 32))
    } else {
        (addr6(b, 24), addr6(b, 40), addr6(b, 56))
    };
    let mut e = Entry {
        protocol: b[1],
        flags: be32(b, 4),
        state: be16(b, 8),
        cport: be16(b, 10),
        vport: be16(b, 12),
        dport: be16(b, 14),
        fwmark: be32(b, 16),
        timeout: be32(b, 20),
        caddr,
        vaddr,
        daddr,
        seq: None,
        conn: None,
        synproxy: None,
        proxy: None,
        release: None,
        pe: false,
    };
    let (mut p, mut seen) = (fixed, 0u32);
    while p < size {
        if p + 2 > size {
            return Err(WireError::OptionLength { index, opt: b[p] });
        }
        let (opt, len) = (b[p], b[p + 1] as usize);
        p += 2;
        if len == 0 || p + len > size {
            return Err(WireError::OptionLength { index, opt });
        }
        let d = &b[p..p + len];
        // One bit per known option: the kernel's by type (optional bit stripped), rvs's above.
        let bit = match opt {
            OPT_RVS_CONN | OPT_RVS_SYNPROXY | OPT_RVS_PROXY | OPT_RVS_RELEASE => 1u32 << (8 + (opt & 0x0f)),
            _ => match opt & !OPT_F_PARAM {
                k @ (OPT_SEQ_DATA | OPT_PE_DATA | OPT_PE_NAME) => 1u32 << k,
                _ => 0,
            },
        };
        if bit != 0 {
            if seen & bit != 0 {
                return Err(WireError::OptionTwice { index, opt });
            }
            seen |= bit;
        }
        let rvs_version = |want: &[usize]| -> Result<(), WireError> {
            if !want.contains(&len) {
                return Err(WireError::OptionLength { index, opt });
            }
            if d[0] != RVS_OPT_VERSION {
                return Err(WireError::OptionVersion { index, opt, version: d[0] });
            }
            Ok(())
        };
        match opt {
            OPT_RVS_CONN => {
                rvs_version(&[RVS_CONN_LEN_V4, RVS_CONN_LEN_V6])?;
                let laddr = if len == RVS_CONN_LEN_V4 { addr4(d, 4) } else { addr6(d, 4) };
                if laddr.is_ipv6() != e.caddr.is_ipv6() {
                    return Err(WireError::Family(index));
                }
                e.conn = Some(RvsConn { laddr, lport: be16(d, 2), toa_done: d[1] & 1 != 0 });
            }
            OPT_RVS_SYNPROXY => {
                rvs_version(&[RVS_SYNPROXY_LEN])?;
                e.synproxy = Some(RvsSynproxy { ts_delta: (d[1] & 1 != 0).then(|| be32(d, 4)) });
            }
            OPT_RVS_PROXY => {
                rvs_version(&[RVS_PROXY_LEN])?;
                e.proxy = Some(RvsProxy { len: d[1], acked: d[2] & 1 != 0, start: be32(d, 4) });
            }
            OPT_RVS_RELEASE => {
                rvs_version(&[RVS_RELEASE_LEN])?;
                e.release = Some(d[1]);
            }
            _ => match opt & !OPT_F_PARAM {
                OPT_SEQ_DATA => {
                    if len != SEQ_DATA_LEN {
                        return Err(WireError::OptionLength { index, opt });
                    }
                    e.seq = Some(SeqData { in_seq: seq_at(d, 0), out_seq: seq_at(d, 12) });
                }
                OPT_PE_DATA | OPT_PE_NAME => {
                    let max = if opt & !OPT_F_PARAM == OPT_PE_DATA { PE_DATA_MAX } else { PE_NAME_MAX };
                    if len > max {
                        return Err(WireError::OptionLength { index, opt });
                    }
                    e.pe = true;
                }
                _ if opt & OPT_F_PARAM != 0 => {}
                _ => return Err(WireError::OptionUnknown { index, opt }),
            },
        }
        p += len;
    }
    Ok((e, size))
}

/// A message being filled, the kernel's `ip_vs_sync_buff`: entries are appended with the
/// kernel's padding until the next one would pass `max_len` or 255 entries.
#[derive(Debug, Clone)]
pub struct MessageBuf {
    buf: Vec<u8>,
    max_len: usize,
    syncid: u8,
}

/// The entry does not fit: send the message and start a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sync message full")]
pub struct Full;

impl MessageBuf {
    /// An empty message of at most `max_len` bytes (see [`max_message_len`]).
    pub fn new(syncid: u8, max_len: usize) -> MessageBuf {
        let max_len = max_len.clamp(HEADER_LEN + V6_LEN + 64, u16::MAX as usize);
        let mut m = MessageBuf { buf: Vec::with_capacity(max_len), max_len, syncid };
        m.clear();
        m
    }

    /// Empties the message, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&[0, self.syncid, 0, HEADER_LEN as u8, 0, SYNC_PROTO_VER, 0, 0]);
    }

    pub fn nr_conns(&self) -> u8 {
        self.buf[4]
    }

    pub fn is_empty(&self) -> bool {
        self.nr_conns() == 0
    }

    /// Appends `e` with the padding that aligns it, or says the message is full.
    pub fn push(&mut self, e: &Entry) -> Result<(), Full> {
        let len = e.wire_len();
        let pad = self.buf.len().wrapping_neg() & 3;
        if self.nr_conns() == u8::MAX || self.buf.len() + pad + len > self.max_len {
            return Err(Full);
        }
        self.buf.resize(self.buf.len() + pad, 0);
        let start = self.buf.len();
        let b = &mut self.buf;
        b.push(if e.is_v6() { STYPE_F_INET6 } else { 0 });
        b.push(e.protocol);
        b.extend_from_slice(&((len as u16) & SVER_MASK).to_be_bytes());
        b.extend_from_slice(&(e.flags & !flags::HASHED).to_be_bytes());
        b.extend_from_slice(&e.state.to_be_bytes());
        b.extend_from_slice(&e.cport.to_be_bytes());
        b.extend_from_slice(&e.vport.to_be_bytes());
        b.extend_from_slice(&e.dport.to_be_bytes());
        b.extend_from_slice(&e.fwmark.to_be_bytes());
        b.extend_from_slice(&e.timeout.to_be_bytes());
        for a in [e.caddr, e.vaddr, e.daddr] {
            put_addr(b, a, e.is_v6());
        }
        if let Some(s) = &e.seq {
            b.extend_from_slice(&[OPT_SEQ_DATA, SEQ_DATA_LEN as u8]);
            for q in [s.in_seq, s.out_seq] {
                for v in [q.init_seq, q.delta, q.previous_delta] {
                    b.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        if let Some(c) = &e.conn {
            let v6 = c.laddr.is_ipv6();
            let olen = if v6 { RVS_CONN_LEN_V6 } else { RVS_CONN_LEN_V4 };
            b.extend_from_slice(&[OPT_RVS_CONN, olen as u8, RVS_OPT_VERSION, c.toa_done as u8]);
            b.extend_from_slice(&c.lport.to_be_bytes());
            put_addr(b, c.laddr, v6);
        }
        if let Some(s) = &e.synproxy {
            b.extend_from_slice(&[OPT_RVS_SYNPROXY, RVS_SYNPROXY_LEN as u8, RVS_OPT_VERSION]);
            b.extend_from_slice(&[s.ts_delta.is_some() as u8, 0, 0]);
            b.extend_from_slice(&s.ts_delta.unwrap_or(0).to_be_bytes());
        }
        if let Some(p) = &e.proxy {
            b.extend_from_slice(&[
                OPT_RVS_PROXY,
                RVS_PROXY_LEN as u8,
                RVS_OPT_VERSION,
                p.len,
                p.acked as u8,
                0,
            ]);
            b.extend_from_slice(&p.start.to_be_bytes());
        }
        if let Some(r) = e.release {
            b.extend_from_slice(&[OPT_RVS_RELEASE, RVS_RELEASE_LEN as u8, RVS_OPT_VERSION, r]);
        }
        debug_assert_eq!(b.len() - start, len);
        b[4] += 1;
        let size = b.len() as u16;
        b[2..4].copy_from_slice(&size.to_be_bytes());
        Ok(())
    }

    /// The message as it goes on the wire.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

fn put_addr(b: &mut Vec<u8>, a: IpAddr, v6: bool) {
    match a {
        IpAddr::V4(a) if !v6 => b.extend_from_slice(&a.octets()),
        IpAddr::V6(a) if v6 => b.extend_from_slice(&a.octets()),
        // A mixed-family entry cannot be encoded; the family follows caddr and the rest is
        // written mapped so the layout stays the kernel's (the decoder checks families).
        IpAddr::V4(a) => b.extend_from_slice(&a.to_ipv6_mapped().octets()),
        IpAddr::V6(a) => b.extend_from_slice(&a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED).octets()),
    }
}

/// The full-table request of a backup with `syncid`.
pub fn request(syncid: u8) -> [u8; HEADER_LEN + 4] {
    let n = (HEADER_LEN + REQUEST_BODY.len()) as u16;
    let s = n.to_be_bytes();
    let r = REQUEST_BODY;
    [0, syncid, s[0], s[1], 0, SYNC_PROTO_VER, 0, 0, r[0], r[1], r[2], r[3]]
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
