//! TCP header (RFC 9293) and options.
//!
//! The buffer is exactly the TCP segment (the IPv4 payload, `ipv4::Packet::payload`): the checksum and
//! the pseudo-header length are computed over all of it.
//!
//! Invariants after [`Packet::new_checked`]: `20 <= header_len() <= buffer.len()`, so the options area
//! and the payload are in bounds. Options themselves are untrusted: [`TcpOptions`] validates each one
//! and yields `Err(BadOption)` (then stops) instead of reading past the option area.
//!
//! Setters keep the checksum consistent incrementally; option edits work at any byte alignment.
use super::checksum;
use super::{get16, get32, put16, Error, Result};
use core::fmt;
use core::ops;
use std::net::Ipv4Addr;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Longest header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

pub(super) mod field {
    use crate::wire::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (high nibble of byte 12), NS, then the 8 classic flags in byte 13.
    pub const OFF_FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
    pub const OPTIONS: usize = 20;
}

/// Option kinds.
pub mod kind {
    pub const END_OF_LIST: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// The eight classic TCP flags (byte 13). NS (byte 12, bit 0) is obsolete and not represented.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);
    pub const NONE: TcpFlags = TcpFlags(0);

    pub const fn from_bits(b: u8) -> TcpFlags {
        TcpFlags(b)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// All of `other` are set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Any of `other` is set.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }
    pub const fn difference(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & !other.0)
    }
    pub fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }
    pub fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
    }
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// SYN without ACK/RST/FIN: a connection-opening segment, the one that may create state.
    pub const fn is_syn_only(self) -> bool {
        self.0 & (Self::SYN.0 | Self::ACK.0 | Self::RST.0 | Self::FIN.0) == Self::SYN.0
    }
}

impl ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

impl ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.insert(rhs)
    }
}

impl ops::BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        if self.0 == 0 {
            return f.write_str("NONE");
        }
        let mut first = true;
        for (i, n) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// SACK blocks of a SACK option: 1..=4 `(left, right)` edges, validated to be a multiple of 8 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SackBlocks<'a>(pub(super) &'a [u8]);

impl<'a> SackBlocks<'a> {
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        self.0.chunks_exact(8).map(|c| (get32(c, 0), get32(c, 4)))
    }
}

impl fmt::Debug for SackBlocks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One parsed TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    Nop,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    Sack(SackBlocks<'a>),
    Timestamps { tsval: u32, tsecr: u32 },
    Unknown { kind: u8, data: &'a [u8] },
}

impl<'a> TcpOption<'a> {
    /// Parse the option at the start of `data` (non-empty); returns it and its length in bytes.
    fn parse(data: &'a [u8]) -> Result<(TcpOption<'a>, usize)> {
        let k = *data.first().ok_or(Error::BadOption)?;
        match k {
            kind::END_OF_LIST => return Ok((TcpOption::EndOfList, 1)),
            kind::NOP => return Ok((TcpOption::Nop, 1)),
            _ => {}
        }
        let len = *data.get(1).ok_or(Error::BadOption)? as usize;
        // A length below 2 would make no progress (or go backwards): the classic option-loop hang.
        if len < 2 || len > data.len() {
            return Err(Error::BadOption);
        }
        let body = &data[2..len];
        // Known kinds with a wrong length are rejected rather than reinterpreted: we rewrite MSS and
        // timestamps in place and must not do it at the wrong bytes.
        let opt = match (k, len) {
            (kind::MSS, 4) => TcpOption::Mss(get16(body, 0)),
            (kind::WINDOW_SCALE, 3) => TcpOption::WindowScale(body[0]),
            (kind::SACK_PERMITTED, 2) => TcpOption::SackPermitted,
            (kind::SACK, l) if l >= 10 && (l - 2) % 8 == 0 => TcpOption::Sack(SackBlocks(body)),
            (kind::TIMESTAMPS, 10) => TcpOption::Timestamps { tsval: get32(body, 0), tsecr: get32(body, 4) },
            (kind::MSS | kind::WINDOW_SCALE | kind::SACK_PERMITTED | kind::SACK | kind::TIMESTAMPS, _) => {
                return Err(Error::BadOption)
            }
            _ => TcpOption::Unknown { kind: k, data: body },
        };
        Ok((opt, len))
    }

    /// Encoded length in bytes.
    ///
    /// For `Sack` and `Unknown` this is `2 + data.len()`, which [`TcpOption::emit`] writes as the length
    /// byte: callers building options keep it at most 40 ([`TcpOptionList::push`] checks it).
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::Nop => 1,
            TcpOption::Mss(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(b) => 2 + b.0.len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Write the option at the start of `buf`; returns its length, [`TcpOption::buffer_len`].
    ///
    /// Panics if `buf` is shorter than that (as smoltcp's emitters do): callers size the buffer from
    /// `buffer_len` first, as [`TcpRepr::emit`] does.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let b = &mut buf[..len];
        match *self {
            TcpOption::EndOfList => b[0] = kind::END_OF_LIST,
            TcpOption::Nop => b[0] = kind::NOP,
            TcpOption::Mss(mss) => {
                b[..2].copy_from_slice(&[kind::MSS, 4]);
                put16(b, 2, mss);
            }
            TcpOption::WindowScale(shift) => b.copy_from_slice(&[kind::WINDOW_SCALE, 3, shift]),
            TcpOption::SackPermitted => b.copy_from_slice(&[kind::SACK_PERMITTED, 2]),
            TcpOption::Sack(blocks) => {
                b[..2].copy_from_slice(&[kind::SACK, len as u8]);
                b[2..].copy_from_slice(blocks.0);
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                b[..2].copy_from_slice(&[kind::TIMESTAMPS, 10]);
                super::put32(b, 2, tsval);
                super::put32(b, 6, tsecr);
            }
            TcpOption::Unknown { kind, data } => {
                b[..2].copy_from_slice(&[kind, len as u8]);
                b[2..].copy_from_slice(data);
            }
        }
        len
    }
}

pub use super::tcp_repr::{TcpOptionList, TcpRepr, MAX_OPTIONS};

/// Iterator over an options area. Yields `EndOfList` and then stops; on a malformed option yields one
/// `Err(BadOption)` and then stops.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> TcpOptions<'a> {
    pub fn new(options: &'a [u8]) -> TcpOptions<'a> {
        TcpOptions { data: options, pos: 0 }
    }

    /// Offset in the options area of the option the next call to `next` returns.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.pos..).filter(|r| !r.is_empty())?;
        match TcpOption::parse(rest) {
            Ok((opt, len)) => {
                self.pos = if opt == TcpOption::EndOfList { self.data.len() } else { self.pos + len };
                Some(Ok(opt))
            }
            Err(e) => {
                self.pos = self.data.len();
                Some(Err(e))
            }
        }
    }
}

/// Offset (in `options`) and value of the first option `pick` accepts, `None` if absent or if a malformed
/// option comes first.
fn find_option<'a, R>(
    options: &'a [u8],
    mut pick: impl FnMut(&TcpOption<'a>) -> Option<R>,
) -> Option<(usize, R)> {
    let mut it = TcpOptions::new(options);
    loop {
        let at = it.position();
        if let Some(r) = pick(&it.next()?.ok()?) {
            return Some((at, r));
        }
    }
}

/// A read/write view of a TCP segment.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    pub(super) buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN || hl > len {
            return Err(Error::BadDataOffset);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    pub fn dst_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    pub fn seq_number(&self) -> u32 {
        get32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    pub fn ack_number(&self) -> u32 {
        get32(self.buffer.as_ref(), field::ACK_NUM.start)
    }

    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::OFF_FLAGS.start] >> 4) as usize) * 4
    }

    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::OFF_FLAGS.start + 1])
    }

    pub fn window_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::WIN_SIZE.start)
    }

    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    pub fn urgent_at(&self) -> u16 {
        get16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// The raw options area (between the fixed header and the payload).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..self.header_len()]
    }

    pub fn options_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// The MSS option, if present and every option before it is well-formed.
    pub fn mss_option(&self) -> Option<u16> {
        find_option(self.options(), |o| if let TcpOption::Mss(m) = o { Some(*m) } else { None }).map(|x| x.1)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Accumulator of the pseudo header plus the whole segment.
    fn sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let b = self.buffer.as_ref();
        let ph = checksum::ipv4_pseudo_header(src, dst, super::ipv4::PROTO_TCP, b.len() as u16);
        checksum::fold(checksum::accumulate(ph, b))
    }

    /// Verify against the pseudo header of `src -> dst`. False for segments longer than 65535 bytes.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.buffer.as_ref().len() <= 0xffff && self.sum(src, dst) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline(always)]
    fn adjust_checksum(&mut self, delta: u64) {
        let c = self.checksum();
        put16(self.buffer.as_mut(), field::CHECKSUM.start, checksum::adjust(c, delta));
    }

    #[inline(always)]
    fn write16(&mut self, at: usize, new: u16) {
        let old = get16(self.buffer.as_ref(), at);
        put16(self.buffer.as_mut(), at, new);
        self.adjust_checksum(checksum::delta16(old, new));
    }

    #[inline(always)]
    fn write32(&mut self, at: usize, new: u32) {
        let old = get32(self.buffer.as_ref(), at);
        super::put32(self.buffer.as_mut(), at, new);
        self.adjust_checksum(checksum::delta32(old, new));
    }

    /// Overwrite header bytes at any alignment (options only: never the checksum field), adjusting the
    /// checksum over the even-aligned span that covers them.
    fn replace_bytes(&mut self, at: usize, new: &[u8]) {
        debug_assert!(at >= field::OPTIONS && at + new.len() <= self.header_len());
        let (start, end) = (at & !1, (at + new.len() + 1) & !1);
        let mut old = [0u8; MAX_HEADER_LEN];
        let old = &mut old[..end - start];
        let b = self.buffer.as_mut();
        old.copy_from_slice(&b[start..end]);
        b[at..at + new.len()].copy_from_slice(new);
        let delta = checksum::delta_bytes(old, &b[start..end]);
        self.adjust_checksum(delta);
    }

    pub fn set_src_port(&mut self, port: u16) {
        self.write16(field::SRC_PORT.start, port);
    }

    pub fn set_dst_port(&mut self, port: u16) {
        self.write16(field::DST_PORT.start, port);
    }

    pub fn set_seq_number(&mut self, seq: u32) {
        self.write32(field::SEQ_NUM.start, seq);
    }

    pub fn set_ack_number(&mut self, ack: u32) {
        self.write32(field::ACK_NUM.start, ack);
    }

    pub fn set_flags(&mut self, flags: TcpFlags) {
        let hi = self.buffer.as_ref()[field::OFF_FLAGS.start];
        self.write16(field::OFF_FLAGS.start, u16::from_be_bytes([hi, flags.0]));
    }

    pub fn set_window_len(&mut self, win: u16) {
        self.write16(field::WIN_SIZE.start, win);
    }

    pub fn set_urgent_at(&mut self, urg: u16) {
        self.write16(field::URGENT.start, urg);
    }

    /// Raw write of the checksum field.
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }

    /// Raw write of the data offset (`len` a multiple of 4 in 20..=60), for building headers; follow with
    /// [`Packet::fill_checksum`]. The caller keeps `len <= buffer.len()`, or later accessors may panic.
    pub fn set_header_len_raw(&mut self, len: usize) {
        debug_assert!(len % 4 == 0 && (HEADER_LEN..=MAX_HEADER_LEN).contains(&len));
        let b = self.buffer.as_mut();
        b[field::OFF_FLAGS.start] = ((((len / 4) & 0x0f) as u8) << 4) | (b[field::OFF_FLAGS.start] & 0x0f);
    }

    /// Recompute the checksum over pseudo header and segment.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = !self.sum(src, dst);
        self.set_checksum(c);
    }

    /// Rewrite an existing MSS option's value in place (MSS clamping). False if there is none, or a
    /// malformed option precedes it.
    pub fn set_mss_option(&mut self, mss: u16) -> bool {
        let Some((at, _)) = find_option(self.options(), |o| matches!(o, TcpOption::Mss(_)).then_some(()))
        else {
            return false;
        };
        self.replace_bytes(field::OPTIONS + at + 2, &mss.to_be_bytes());
        true
    }

    /// Replace the timestamps option by 10 NOPs (hiding the client's clock from the real server, or
    /// vice versa). False if there is none, or a malformed option precedes it.
    pub fn nop_out_timestamps(&mut self) -> bool {
        let found = find_option(self.options(), |o| matches!(o, TcpOption::Timestamps { .. }).then_some(()));
        let Some((at, _)) = found else {
            return false;
        };
        self.replace_bytes(field::OPTIONS + at, &[kind::NOP; 10]);
        true
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..hl]
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

/// Insert `option` (its size a positive multiple of 4, at most 40) into the TCP segment of the IPv4
/// packet at the start of `buf`, for TOA and similar.
///
/// The packet occupies `buf[..total_len]`; `buf` must have at least `option.len()` spare bytes after it
/// (anything there, such as Ethernet padding, is overwritten). The option goes after the existing options
/// but before an End-of-List, where receivers would stop looking. The payload moves up; the data offset,
/// the IPv4 total length and both checksums are updated. Returns the new IPv4 total length.
///
/// On error the buffer is untouched: `NoRoom` (TCP header would exceed 60 bytes, no tailroom, or the
/// total length would exceed 65535), `BadOption` (bad `option` size, or malformed existing options),
/// `Unsupported` (not TCP), `Fragment`, or an IPv4/TCP parse error.
pub fn insert_option(buf: &mut [u8], option: &[u8]) -> Result<usize> {
    use super::ipv4;
    let n = option.len();
    if n == 0 || n % 4 != 0 || n > MAX_HEADER_LEN - HEADER_LEN {
        return Err(Error::BadOption);
    }
    let ip = ipv4::Packet::new_checked(&*buf)?;
    if ip.protocol() != ipv4::PROTO_TCP {
        return Err(Error::Unsupported);
    }
    if ip.is_fragment() {
        return Err(Error::Fragment);
    }
    let (ihl, total) = (ip.header_len(), ip.total_len() as usize);
    if total + n > 0xffff {
        return Err(Error::NoRoom);
    }
    insert_option_at(buf, ihl, total, option)?;
    ipv4::Packet::new_unchecked(&mut *buf).set_total_len((total + n) as u16);
    Ok(total + n)
}

/// Inserts `option` (a multiple of 4 bytes) at the end of the options of the TCP segment at
/// `buf[l4..end]`, moving the payload up (`buf` needs `option.len()` bytes after `end`) and
/// adjusting the checksum incrementally (the pseudo header's length included, its addresses
/// unchanged): the family-independent half of [`insert_option`]. The caller updates the IP length.
pub fn insert_option_at(buf: &mut [u8], l4: usize, end: usize, option: &[u8]) -> Result<()> {
    let n = option.len();
    if n == 0 || n % 4 != 0 || n > MAX_HEADER_LEN - HEADER_LEN {
        return Err(Error::BadOption);
    }
    let (ihl, total) = (l4, end);
    let tcp = Packet::new_checked(&buf[ihl..total])?;
    let thl = tcp.header_len();
    if thl + n > MAX_HEADER_LEN || buf.len() < total + n || total - ihl + n > 0xffff {
        return Err(Error::NoRoom);
    }
    let mut end_of_options = thl;
    let mut it = tcp.options_iter();
    loop {
        let at = it.position();
        match it.next() {
            None => break,
            Some(Err(e)) => return Err(e),
            Some(Ok(TcpOption::EndOfList)) => {
                end_of_options = field::OPTIONS + at;
                break;
            }
            Some(Ok(_)) => {}
        }
    }
    let seg_len = total - ihl;
    let off_word_old = get16(tcp.buffer, field::OFF_FLAGS.start);

    // From here on nothing can fail.
    let at = ihl + end_of_options;
    buf.copy_within(at..total, at + n);
    buf[at..at + n].copy_from_slice(option);
    let mut tcp = Packet::new_unchecked(&mut buf[ihl..total + n]);
    tcp.set_header_len_raw(thl + n);
    // Incremental rather than a full recompute: it costs nothing per payload byte, and unlike a recompute
    // it keeps a segment that arrived corrupted detectably corrupted. The moved bytes shift by a multiple
    // of 4 and keep their word alignment, so only the new bytes, the data offset and the pseudo-header
    // length contribute (the pseudo-header addresses do not change). New bytes at an odd offset land
    // byte-swapped in the 16-bit sum.
    let opt_sum = checksum::data(option);
    let opt_sum = if end_of_options % 2 == 1 { opt_sum.swap_bytes() } else { opt_sum };
    let delta = checksum::delta16(off_word_old, get16(tcp.buffer, field::OFF_FLAGS.start))
        + checksum::delta16(seg_len as u16, (seg_len + n) as u16)
        + opt_sum as u64;
    tcp.adjust_checksum(delta);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fixtures::ETH_TCP_SYN;
    use crate::wire::testutil::{fuzz_inputs, Rng};

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn syn() -> [u8; 40] {
        let mut s = [0u8; 40];
        s.copy_from_slice(&ETH_TCP_SYN[34..]);
        s
    }

    fn full(seg: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let mut v = seg.to_vec();
        let mut p = Packet::new_unchecked(&mut v[..]);
        p.fill_checksum(src, dst);
        p.checksum()
    }

    #[test]
    fn parse_real_syn() {
        let s = syn();
        let p = Packet::new_checked(&s[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (0x3a6f0c81, 0));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert!(p.flags().is_syn_only() && p.flags().syn() && !p.flags().ack());
        assert_eq!((p.window_len(), p.urgent_at()), (64240, 0));
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(10, 0, 0, 3)));
        assert!(p.payload().is_empty());
        let opts: Vec<_> = p.options_iter().collect::<Result<_>>().unwrap();
        assert_eq!(
            opts,
            [
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps { tsval: 0x0012d687, tsecr: 0 },
                TcpOption::Nop,
                TcpOption::WindowScale(7),
            ]
        );
        assert_eq!(opts.iter().map(|o| o.buffer_len()).sum::<usize>(), 20);
        assert_eq!(p.mss_option(), Some(1460));
    }

    #[test]
    fn build_round_trip() {
        let mut b = [0u8; 28 + 3];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_header_len_raw(28);
        p.set_src_port(1234);
        p.set_dst_port(443);
        p.set_seq_number(0xdead_beef);
        p.set_ack_number(7);
        p.set_flags(TcpFlags::PSH | TcpFlags::ACK);
        p.set_window_len(1000);
        p.options_mut().copy_from_slice(&[2, 4, 0x05, 0x78, 1, 1, 0, 0]);
        p.payload_mut().copy_from_slice(b"hey");
        p.fill_checksum(SRC, DST);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!((p.src_port(), p.dst_port(), p.seq_number(), p.ack_number()), (1234, 443, 0xdead_beef, 7));
        assert_eq!((p.flags(), p.window_len(), p.header_len()), (TcpFlags::PSH | TcpFlags::ACK, 1000, 28));
        assert_eq!((p.mss_option(), p.payload()), (Some(1400), &b"hey"[..]));
        let opts: Vec<_> = p.options_iter().collect();
        assert_eq!(
            opts,
            [Ok(TcpOption::Mss(1400)), Ok(TcpOption::Nop), Ok(TcpOption::Nop), Ok(TcpOption::EndOfList)]
        );
    }

    #[test]
    fn flags_helpers() {
        let mut f = TcpFlags::SYN | TcpFlags::ACK;
        assert!(f.contains(TcpFlags::SYN) && f.ack() && !f.is_syn_only() && !f.fin() && !f.rst());
        assert!(f.intersects(TcpFlags::ACK | TcpFlags::FIN));
        f.remove(TcpFlags::SYN);
        f |= TcpFlags::FIN;
        assert_eq!(f, TcpFlags::FIN | TcpFlags::ACK);
        assert_eq!(format!("{f:?}"), "FIN|ACK");
        assert_eq!(format!("{:?}", TcpFlags::NONE), "NONE");
        assert_eq!((f & TcpFlags::ACK).bits(), 0x10);
        assert_eq!(f.difference(TcpFlags::ACK), TcpFlags::FIN);
        assert!(TcpFlags::default().is_empty());
        assert_eq!(TcpFlags::from_bits(0xff).bits(), 0xff);
    }

    #[test]
    fn truncation_and_data_offset() {
        let s = syn();
        for len in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&s[..len]).unwrap_err(), Error::Truncated, "len {len}");
        }
        for len in HEADER_LEN..s.len() {
            assert_eq!(Packet::new_checked(&s[..len]).unwrap_err(), Error::BadDataOffset, "len {len}");
        }
        let mut b = syn();
        for off in 0..5u8 {
            b[12] = off << 4;
            assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadDataOffset);
        }
        b[12] = 0xf0;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadDataOffset);
        b[12] = 0x50;
        assert_eq!(Packet::new_checked(&b[..]).unwrap().payload().len(), 20);
    }

    fn parse_all(opts: &[u8]) -> Vec<Result<TcpOption<'_>>> {
        TcpOptions::new(opts).collect()
    }

    #[test]
    fn option_edge_cases() {
        use TcpOption::*;
        let bad = Err(Error::BadOption);
        // zero and one length: would loop forever or go backwards
        assert_eq!(parse_all(&[1, 0xfe, 0, 1]), [Ok(Nop), bad]);
        assert_eq!(parse_all(&[0xfe, 1, 1, 1]), [bad]);
        // overrunning
        assert_eq!(parse_all(&[2, 4, 5]), [bad]);
        assert_eq!(parse_all(&[1, 1, 8]), [Ok(Nop), Ok(Nop), bad]);
        assert_eq!(parse_all(&[0xfe, 9, 0, 0, 0, 0, 0, 0]), [bad]);
        // known kinds with wrong lengths
        assert_eq!(parse_all(&[2, 3, 5]), [bad]);
        assert_eq!(parse_all(&[3, 4, 5, 6]), [bad]);
        assert_eq!(parse_all(&[4, 3, 0]), [bad]);
        assert_eq!(parse_all(&[8, 8, 0, 0, 0, 0, 0, 0]), [bad]);
        assert_eq!(parse_all(&[5, 2]), [bad]);
        assert_eq!(parse_all(&[5, 9, 0, 0, 0, 0, 0, 0, 0]), [bad]);
        // EOL stops, whatever follows
        assert_eq!(parse_all(&[1, 0, 2, 0]), [Ok(Nop), Ok(EndOfList)]);
        assert_eq!(parse_all(&[]), []);
        // odd layouts: MSS at an odd offset, unknown kinds, SACK blocks
        let sack = [1, 2, 4, 0x05, 0xb4, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0x22, 2];
        let got = parse_all(&sack);
        assert_eq!(got[1], Ok(Mss(0x5b4)));
        let Ok(Sack(blocks)) = got[2] else { panic!("{got:?}") };
        assert_eq!((blocks.len(), blocks.is_empty()), (2, false));
        assert_eq!(blocks.iter().collect::<Vec<_>>(), [(1, 2), (3, 4)]);
        assert_eq!(format!("{blocks:?}"), "[(1, 2), (3, 4)]");
        assert_eq!(got[3], Ok(Unknown { kind: 0x22, data: &[] }));
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn setters_keep_checksum_exact() {
        let mut rng = Rng::new(30);
        let mut s = [0u8; 57]; // odd length: the trailing pad byte must not confuse anything
        s[..40].copy_from_slice(&syn());
        rng.fill(&mut s[40..]);
        let mut p = Packet::new_checked(&mut s[..]).unwrap();
        p.fill_checksum(SRC, DST);
        for i in 0..20_000 {
            match i % 7 {
                0 => p.set_src_port(rng.u16()),
                1 => p.set_dst_port(rng.u16()),
                2 => p.set_seq_number(rng.u32()),
                3 => p.set_ack_number(rng.u32()),
                4 => p.set_flags(TcpFlags::from_bits(rng.u8())),
                5 => p.set_window_len(rng.u16()),
                _ => {
                    p.set_urgent_at(rng.u16());
                    assert!(p.set_mss_option(rng.u16()));
                }
            }
            assert_eq!(p.checksum(), full(p.buffer, SRC, DST), "step {i}");
        }
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(p.header_len(), 40, "set_flags keeps the data offset");
    }

    #[test]
    fn mss_at_odd_offset_and_missing() {
        let mut rng = Rng::new(31);
        // NOP, MSS (value at odd offset 23), NOP, NOP, NOP
        let mut s = [0u8; 28];
        s[..20].copy_from_slice(&syn()[..20]);
        s[12] = 0x70;
        s[20..].copy_from_slice(&[1, 2, 4, 0x05, 0xb4, 1, 1, 1]);
        let mut p = Packet::new_checked(&mut s[..]).unwrap();
        p.fill_checksum(SRC, DST);
        for _ in 0..2000 {
            let m = rng.u16();
            assert!(p.set_mss_option(m));
            assert_eq!(p.mss_option(), Some(m));
            assert_eq!(p.checksum(), full(p.buffer, SRC, DST));
        }
        assert!(!p.nop_out_timestamps());
        p.options_mut()[1] = 0xfe; // now an unknown option with length 4, no MSS left
        assert!(!p.set_mss_option(1));
        p.options_mut()[2] = 0; // malformed
        assert!(!p.set_mss_option(1) && !p.nop_out_timestamps() && p.mss_option().is_none());
    }

    #[test]
    fn nop_out_timestamps_checksum() {
        for lead in 0..3 {
            // Timestamps at offsets with every alignment (lead NOPs).
            let mut s = [0u8; 40];
            s[..20].copy_from_slice(&syn()[..20]);
            s[12] = 0xa0;
            s[20..20 + lead].fill(1);
            s[20 + lead..30 + lead].copy_from_slice(&[8, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
            s[30 + lead..].fill(1);
            let mut p = Packet::new_checked(&mut s[..]).unwrap();
            p.fill_checksum(SRC, DST);
            assert!(p.nop_out_timestamps());
            assert_eq!(p.checksum(), full(p.buffer, SRC, DST));
            assert!(p.options().iter().all(|&b| b == 1));
            assert!(!p.nop_out_timestamps());
        }
        let mut s = syn();
        let mut p = Packet::new_checked(&mut s[..]).unwrap();
        assert!(p.nop_out_timestamps());
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(p.options()[6..16], [1; 10]);
        assert_eq!(p.mss_option(), Some(1460));
    }

    /// An IPv4+TCP packet in a buffer with `spare` bytes of tailroom.
    fn ip_syn_with_payload(payload: &[u8], spare: usize) -> Vec<u8> {
        use crate::wire::ipv4;
        let mut v = ETH_TCP_SYN[14..].to_vec();
        v.extend_from_slice(payload);
        let total = v.len();
        {
            let mut ip = ipv4::Packet::new_unchecked(&mut v[..]);
            ip.set_total_len(total as u16);
            let mut tcp = Packet::new_unchecked(ip.payload_mut());
            tcp.fill_checksum(SRC, DST);
        }
        v.resize(total + spare, 0xee);
        v
    }

    #[test]
    fn insert_option_cases() {
        use crate::wire::ipv4;
        let opt = [0xfd, 4, 0xaa, 0xbb];
        for plen in [0usize, 1, 2, 3, 7, 100] {
            let payload: Vec<u8> = (0..plen as u8).collect();
            let mut v = ip_syn_with_payload(&payload, 4);
            let total = insert_option(&mut v, &opt).unwrap();
            assert_eq!(total, 60 + plen + 4);
            let ip = ipv4::Packet::new_checked(&v[..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.total_len() as usize, total);
            let tcp = Packet::new_checked(ip.payload()).unwrap();
            assert_eq!(tcp.header_len(), 44);
            assert_eq!(tcp.payload(), &payload[..]);
            assert!(tcp.verify_checksum(SRC, DST), "plen {plen}");
            assert_eq!(&tcp.options()[20..], &opt);
        }
        // No tailroom: refused, untouched.
        let v0 = ip_syn_with_payload(b"x", 3);
        let mut v = v0.clone();
        assert_eq!(insert_option(&mut v, &opt), Err(Error::NoRoom));
        assert_eq!(v, v0);
        // Bad sizes.
        assert_eq!(insert_option(&mut v, &opt[..3]), Err(Error::BadOption));
        assert_eq!(insert_option(&mut v, &[]), Err(Error::BadOption));
        assert_eq!(v, v0);
    }

    #[test]
    fn insert_option_before_end_of_list_at_any_alignment() {
        use crate::wire::ipv4;
        for eol_at in 0..4 {
            // header 28: eol_at NOPs, EOL, zero padding
            let mut v = ETH_TCP_SYN[14..54].to_vec();
            v.extend_from_slice(&[0; 8]);
            v[20 + 12] = 0x70;
            v[40..40 + eol_at].fill(1);
            v.extend_from_slice(b"hello");
            let total = v.len();
            let mut ip = ipv4::Packet::new_unchecked(&mut v[..]);
            ip.set_total_len(total as u16);
            Packet::new_unchecked(ip.payload_mut()).fill_checksum(SRC, DST);
            v.resize(total + 8, 0);
            assert_eq!(insert_option(&mut v, &[0xfe, 8, 1, 2, 3, 4, 5, 6]), Ok(total + 8));
            let ip = ipv4::Packet::new_checked(&v[..]).unwrap();
            let tcp = Packet::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(SRC, DST), "eol_at {eol_at}");
            assert_eq!(tcp.payload(), b"hello");
            let opts: Vec<_> = tcp.options_iter().map(|o| o.unwrap()).collect();
            assert_eq!(opts.len(), eol_at + 2);
            assert_eq!(opts[eol_at], TcpOption::Unknown { kind: 0xfe, data: &[1, 2, 3, 4, 5, 6] });
            assert_eq!(opts[eol_at + 1], TcpOption::EndOfList);
        }
    }

    #[test]
    fn each_option_emits_and_parses_back() {
        let sack = [0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0];
        let toa = crate::wire::toa::toa_data(Ipv4Addr::new(203, 0, 113, 7), 51234);
        let cases: [(TcpOption<'_>, &[u8]); 9] = [
            (TcpOption::EndOfList, &[0]),
            (TcpOption::Nop, &[1]),
            (TcpOption::Mss(1460), &[2, 4, 0x05, 0xb4]),
            (TcpOption::WindowScale(14), &[3, 3, 14]),
            (TcpOption::SackPermitted, &[4, 2]),
            (
                TcpOption::Sack(SackBlocks(&sack)),
                &[5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0],
            ),
            (
                TcpOption::Timestamps { tsval: 0x0102_0304, tsecr: 0xa0b0_c0d0 },
                &[8, 10, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0],
            ),
            (crate::wire::toa::toa(&toa), &[254, 8, 0xc8, 0x22, 203, 0, 113, 7]),
            (TcpOption::Unknown { kind: 0x22, data: &[] }, &[0x22, 2]),
        ];
        for (opt, want) in cases {
            let mut buf = [0xeeu8; 41];
            assert_eq!(opt.buffer_len(), want.len(), "{opt:?}");
            assert_eq!(opt.emit(&mut buf), want.len(), "{opt:?}");
            assert_eq!(&buf[..want.len()], want, "{opt:?}");
            assert_eq!(buf[want.len()], 0xee, "{opt:?} wrote past its length");
            assert_eq!(TcpOption::parse(&buf[..want.len()]), Ok((opt, want.len())));
        }
        assert_eq!(crate::wire::toa::parse_toa(&crate::wire::toa::toa_option(DST, 443)), Some((DST, 443)));
    }

    #[test]
    fn option_list_limits_and_padding() {
        let mut l = TcpOptionList::new();
        assert_eq!((l.len(), l.buffer_len(), l.padded_len()), (0, 0, 0));
        assert_eq!(l.push(TcpOption::EndOfList), Err(Error::BadOption));
        assert_eq!(l.push(TcpOption::Sack(SackBlocks(&[0; 4]))), Err(Error::BadOption));
        l.push(TcpOption::Mss(1)).unwrap();
        l.push(TcpOption::WindowScale(2)).unwrap();
        assert_eq!((l.buffer_len(), l.padded_len()), (7, 8));
        let mut b = [0xeeu8; 9];
        assert_eq!(l.emit(&mut b), 8);
        assert_eq!(b, [2, 4, 0, 1, 3, 3, 2, 0, 0xee], "padded with End-of-List");
        // 40 bytes at most, MAX_OPTIONS entries at most; a refused push leaves the list as it was.
        let ts = TcpOption::Timestamps { tsval: 0, tsecr: 0 };
        let sp = TcpOption::SackPermitted;
        let mut l = TcpOptionList::from_slice(&[ts, ts, ts, sp, sp, TcpOption::Mss(1)]).unwrap();
        assert_eq!(l.push(TcpOption::Mss(1)), Err(Error::NoRoom));
        assert_eq!(l.buffer_len(), 38);
        l.push(TcpOption::Nop).unwrap();
        l.push(TcpOption::Nop).unwrap();
        assert_eq!((l.buffer_len(), l.push(TcpOption::Nop)), (40, Err(Error::NoRoom)));
        let nops = TcpOptionList::from_slice(&[TcpOption::Nop; MAX_OPTIONS]).unwrap();
        assert_eq!(nops.clone().push(TcpOption::Nop), Err(Error::NoRoom));
        assert_eq!(TcpOptionList::from_slice(&[TcpOption::Nop; MAX_OPTIONS + 1]), Err(Error::NoRoom));
        assert_eq!(format!("{:?}", TcpOptionList::from_slice(&[TcpOption::Nop]).unwrap()), "[Nop]");
        // Padding at every remainder.
        for n in 0..4 {
            let l = TcpOptionList::from_slice(&[TcpOption::Nop; 4][..n]).unwrap();
            let r = TcpRepr { options: l, ..TcpRepr::bare(1, 2, 3, 4, TcpFlags::ACK) };
            assert_eq!(r.header_len(), if n == 0 { 20 } else { 24 });
            let mut b = [0xeeu8; 24];
            r.emit(&mut Packet::new_unchecked(&mut b[..r.header_len()]), SRC, DST).unwrap();
            let p = Packet::new_checked(&b[..r.header_len()]).unwrap();
            assert!(p.verify_checksum(SRC, DST));
            assert_eq!(&p.options()[n..], &[0u8; 4][..p.options().len() - n]);
            assert_eq!(TcpRepr::parse(&p).unwrap(), r, "the End-of-List padding is not kept");
        }
    }

    /// Emit `r` (payload `payload`) and check it parses back whole with a valid checksum.
    fn round_trip(r: &TcpRepr<'_>, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0xeeu8; r.buffer_len() + 3];
        let hl = r.header_len();
        v[hl..hl + payload.len()].copy_from_slice(payload);
        let n = r.buffer_len();
        r.emit(&mut Packet::new_unchecked(&mut v[..]), SRC, DST).unwrap();
        assert_eq!(&v[n..], &[0xee; 3], "nothing written past the segment");
        v.truncate(n);
        let p = Packet::new_checked(&v[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(p.checksum(), full(&v, SRC, DST));
        assert_eq!(TcpRepr::parse(&p).unwrap(), *r);
        assert_eq!((p.urgent_at(), p.payload()), (0, payload));
        v
    }

    #[test]
    fn syn_rst_synack_round_trips() {
        // The Linux SYN of the fixture, byte for byte.
        let syn = TcpRepr {
            window: 64240,
            options: TcpOptionList::linux_syn(Some(1460), true, Some((0x0012d687, 0)), Some(7)),
            ..TcpRepr::bare(40000, 80, 0x3a6f0c81, 0, TcpFlags::SYN)
        };
        assert_eq!(round_trip(&syn, &[]), &ETH_TCP_SYN[34..]);
        // Bare RST and RST+ACK.
        let rst = TcpRepr::bare(80, 40000, 0x3a6f0c82, 0, TcpFlags::RST);
        let v = round_trip(&rst, &[]);
        assert_eq!(v.len(), 20);
        assert_eq!(&v[12..16], &[0x50, 0x04, 0, 0]);
        round_trip(&TcpRepr::bare(80, 40000, 0, 0x3a6f0c82, TcpFlags::RST | TcpFlags::ACK), &[]);
        // SYN-ACK without timestamps, and a data segment with SACK blocks and an odd payload.
        let synack = TcpRepr {
            window: 65535,
            options: TcpOptionList::linux_syn(Some(1400), false, None, None),
            ..TcpRepr::bare(80, 40000, 7, 0x3a6f0c82, TcpFlags::SYN | TcpFlags::ACK)
        };
        assert_eq!(round_trip(&synack, &[])[20..], [2, 4, 0x05, 0x78]);
        let blocks = [0, 0, 0, 9, 0, 0, 0, 10];
        let data = TcpRepr {
            window: 501,
            options: TcpOptionList::from_slice(&[
                TcpOption::Nop,
                TcpOption::Nop,
                TcpOption::Sack(SackBlocks(&blocks)),
            ])
            .unwrap(),
            payload_len: 5,
            ..TcpRepr::bare(1, 2, 3, 4, TcpFlags::PSH | TcpFlags::ACK)
        };
        round_trip(&data, b"hello");
        // Too small a buffer: refused, untouched.
        let mut b = [0xeeu8; 39];
        assert_eq!(syn.emit(&mut Packet::new_unchecked(&mut b[..]), SRC, DST), Err(Error::NoRoom));
        assert_eq!(b, [0xee; 39]);
    }

    #[test]
    fn parse_refuses_what_it_cannot_hold() {
        let mut s = syn();
        s[20 + 1] = 3; // MSS with length 3
        assert_eq!(TcpRepr::parse(&Packet::new_checked(&s[..]).unwrap()), Err(Error::BadOption));
        let mut s = [0u8; 60];
        s[..20].copy_from_slice(&syn()[..20]);
        s[12] = 0xf0;
        s[20..].fill(kind::NOP);
        assert_eq!(TcpRepr::parse(&Packet::new_checked(&s[..]).unwrap()), Err(Error::NoRoom));
    }

    /// The SYN-proxy's SYN to the real server as `Worker::sp_send_syn` and the worker's `build_tcp`
    /// wrote it by hand before `TcpRepr` (copied verbatim, as the reference): options, then the segment.
    fn legacy_sp_syn(
        mss: u16,
        ts: Option<(u32, u32)>,
        sack_perm: bool,
        wscale: Option<u8>,
        (seq, sport, dport): (u32, u16, u16),
    ) -> Vec<u8> {
        let mut opts = [0u8; 20];
        opts[..4].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
        let mut n = 4;
        match ts {
            Some((tsval, _)) => {
                let lead = if sack_perm { [4, 2] } else { [1, 1] };
                opts[n..n + 2].copy_from_slice(&lead);
                opts[n + 2..n + 4].copy_from_slice(&[8, 10]);
                opts[n + 4..n + 8].copy_from_slice(&tsval.to_be_bytes());
                opts[n + 8..n + 12].copy_from_slice(&0u32.to_be_bytes());
                n += 12;
            }
            None if sack_perm => {
                opts[n..n + 4].copy_from_slice(&[1, 1, 4, 2]);
                n += 4;
            }
            None => {}
        }
        if let Some(ws) = wscale {
            opts[n..n + 4].copy_from_slice(&[1, 3, 3, ws]);
            n += 4;
        }
        let mut seg = vec![0u8; 20 + n];
        let mut t = Packet::new_unchecked(&mut seg[..]);
        t.set_src_port(sport);
        t.set_dst_port(dport);
        t.set_seq_number(seq);
        t.set_ack_number(0);
        t.set_header_len_raw(20 + n);
        t.set_flags(TcpFlags::SYN);
        t.set_window_len(65_535);
        t.options_mut().copy_from_slice(&opts[..n]);
        t.fill_checksum(SRC, DST);
        seg
    }

    type Timestamps = Option<(u32, u32)>;

    #[test]
    fn linux_syn_matches_the_hand_written_sp_syn() {
        // Fixtures: the options area sp_send_syn wrote, for a few combinations.
        let fixtures: [(Timestamps, bool, Option<u8>, &[u8]); 5] = [
            (
                Some((0x0102_0304, 0)),
                true,
                Some(7),
                &[2, 4, 0x05, 0xac, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7],
            ),
            (Some((0x0102_0304, 0)), false, None, &[2, 4, 0x05, 0xac, 1, 1, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0]),
            (None, true, Some(9), &[2, 4, 0x05, 0xac, 1, 1, 4, 2, 1, 3, 3, 9]),
            (None, false, Some(0), &[2, 4, 0x05, 0xac, 1, 3, 3, 0]),
            (None, false, None, &[2, 4, 0x05, 0xac]),
        ];
        for (ts, sack, ws, want) in fixtures {
            let r = TcpRepr {
                window: 65_535,
                options: TcpOptionList::linux_syn(Some(1452), sack, ts, ws),
                ..TcpRepr::bare(40_001, 80, 0xfeed_f00d, 0, TcpFlags::SYN)
            };
            let v = round_trip(&r, &[]);
            assert_eq!(&v[20..], want);
            assert_eq!(v, legacy_sp_syn(1452, ts, sack, ws, (0xfeed_f00d, 40_001, 80)));
        }
        // And every combination against the reference, byte for byte, checksum included.
        let mut rng = Rng::new(33);
        for i in 0..64u32 {
            let ts = (i & 1 != 0).then(|| (rng.u32(), 0));
            let sack = i & 2 != 0;
            let ws = (i & 4 != 0).then(|| rng.u8() % 15);
            let (mss, seq, sport) = (rng.u16(), rng.u32(), rng.u16());
            let r = TcpRepr {
                window: 65_535,
                options: TcpOptionList::linux_syn(Some(mss), sack, ts, ws),
                ..TcpRepr::bare(sport, 8080, seq, 0, TcpFlags::SYN)
            };
            assert_eq!(round_trip(&r, &[]), legacy_sp_syn(mss, ts, sack, ws, (seq, sport, 8080)), "case {i}");
        }
    }

    #[test]
    fn fuzz_parsers() {
        let s = syn();
        fuzz_inputs(32, 30_000, &[&s], |b| {
            if let Ok(p) = Packet::new_checked(b) {
                let _ = (p.payload(), p.flags(), p.mss_option(), p.verify_checksum(SRC, DST));
                for o in p.options_iter() {
                    if let Ok(TcpOption::Sack(s)) = o {
                        let _ = s.iter().count();
                    }
                }
                let mut v = b.to_vec();
                let mut p = Packet::new_unchecked(&mut v[..]);
                let _ = (p.set_mss_option(1), p.nop_out_timestamps());
            }
            for o in TcpOptions::new(b) {
                let _ = o;
            }
            let mut v = b.to_vec();
            v.resize(b.len() + 8, 0);
            let _ = insert_option(&mut v, &[0xfe, 8, 0, 0, 0, 0, 0, 0]);
        });
    }
}
