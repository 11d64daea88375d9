//! What the gateway emits as TCP: a fixed-capacity option list in Linux's layouts and a
//! smoltcp-style `TcpRepr` whose `emit` fills a header, its options and the checksum, so no caller
//! writes TCP header or option bytes by hand.
//!
//! Invariants: no allocation (at most [`MAX_OPTIONS`] options, 40 bytes); `emit` writes every
//! header byte and a complete checksum, or nothing and an error.
use super::checksum;
use super::tcp::{field, kind, Packet, TcpFlags, TcpOption, TcpOptions, HEADER_LEN, MAX_HEADER_LEN};
use super::{put16, Error, Result};
use core::fmt;
use std::net::Ipv4Addr;

/// Most options a [`TcpOptionList`] holds. The area is 40 bytes, and the layouts the gateway emits use
/// at most 9 entries (Linux's SYN without SACK: MSS, NOP, NOP, TS, NOP, WS, plus a TOA), so 12 leaves
/// room without making the list (copied around by value) large.
pub const MAX_OPTIONS: usize = 12;

/// A fixed-capacity list of options to emit, in order: no allocation, `Copy`.
///
/// Invariants (kept by [`TcpOptionList::push`], the only way in): at most [`MAX_OPTIONS`] entries, their
/// encodings total at most 40 bytes, and no `EndOfList` (the emitter adds it as padding).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TcpOptionList<'a> {
    opts: [TcpOption<'a>; MAX_OPTIONS],
    len: u8,
}

impl<'a> TcpOptionList<'a> {
    pub const fn new() -> TcpOptionList<'a> {
        TcpOptionList { opts: [TcpOption::Nop; MAX_OPTIONS], len: 0 }
    }

    /// A list of `opts`, in order; errors as [`TcpOptionList::push`].
    pub fn from_slice(opts: &[TcpOption<'a>]) -> Result<TcpOptionList<'a>> {
        let mut l = TcpOptionList::new();
        for o in opts {
            l.push(*o)?;
        }
        Ok(l)
    }

    /// Append `opt`. `NoRoom` when the list is full or the options would exceed 40 bytes;
    /// `BadOption` for `EndOfList` (padding is the emitter's job) and for a `Sack` or `Unknown` whose
    /// data cannot be encoded (SACK data not 1..=4 blocks of 8 bytes).
    pub fn push(&mut self, opt: TcpOption<'a>) -> Result<()> {
        match opt {
            TcpOption::EndOfList => return Err(Error::BadOption),
            TcpOption::Sack(b) if b.0.is_empty() || b.0.len() % 8 != 0 => return Err(Error::BadOption),
            _ => {}
        }
        if self.len as usize == MAX_OPTIONS
            || self.buffer_len() + opt.buffer_len() > MAX_HEADER_LEN - HEADER_LEN
        {
            return Err(Error::NoRoom);
        }
        self.opts[self.len as usize] = opt;
        self.len += 1;
        Ok(())
    }

    /// Linux's layout for the options of a SYN or SYN-ACK (`tcp_options_write`), each part only if
    /// given: MSS; SACK-permitted + timestamps (or NOP, NOP, timestamps without SACK); NOP, NOP,
    /// SACK-permitted when SACK comes without timestamps; NOP + window scale. Every option lands
    /// 4-byte aligned and the total is a multiple of 4, so no padding follows. Always fits (at most 20
    /// bytes, 9 entries).
    pub fn linux_syn(
        mss: Option<u16>,
        sack_permitted: bool,
        timestamps: Option<(u32, u32)>,
        wscale: Option<u8>,
    ) -> TcpOptionList<'a> {
        let mut l = TcpOptionList::new();
        let mut put = |o: &[TcpOption<'a>]| {
            for &o in o {
                // Cannot fail: the worst case is 9 entries and 20 bytes (see above).
                let pushed = l.push(o);
                debug_assert!(pushed.is_ok());
            }
        };
        if let Some(m) = mss {
            put(&[TcpOption::Mss(m)]);
        }
        match (timestamps, sack_permitted) {
            (Some((tsval, tsecr)), true) => {
                put(&[TcpOption::SackPermitted, TcpOption::Timestamps { tsval, tsecr }])
            }
            (Some((tsval, tsecr)), false) => {
                put(&[TcpOption::Nop, TcpOption::Nop, TcpOption::Timestamps { tsval, tsecr }])
            }
            (None, true) => put(&[TcpOption::Nop, TcpOption::Nop, TcpOption::SackPermitted]),
            (None, false) => {}
        }
        if let Some(ws) = wscale {
            put(&[TcpOption::Nop, TcpOption::WindowScale(ws)]);
        }
        l
    }

    pub fn as_slice(&self) -> &[TcpOption<'a>] {
        &self.opts[..self.len as usize]
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Encoded length of the options, before padding.
    pub fn buffer_len(&self) -> usize {
        self.as_slice().iter().map(TcpOption::buffer_len).sum()
    }

    /// Encoded length padded to a multiple of 4: what the options take in the header.
    pub fn padded_len(&self) -> usize {
        (self.buffer_len() + 3) & !3
    }

    /// Write the options and their padding (zero bytes: an End-of-List, then zeros) at the start of
    /// `buf`; returns [`TcpOptionList::padded_len`]. Panics if `buf` is shorter than that.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        for o in self.as_slice() {
            n += o.emit(&mut buf[n..]);
        }
        let padded = self.padded_len();
        buf[n..padded].fill(kind::END_OF_LIST);
        padded
    }
}

impl Default for TcpOptionList<'_> {
    fn default() -> Self {
        TcpOptionList::new()
    }
}

impl fmt::Debug for TcpOptionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// A TCP segment to build, in the style of smoltcp's `TcpRepr`: the header fields, the options and
/// the payload length. The urgent pointer is always 0 (the gateway never sends urgent data).
///
/// `ack` is written as given, whatever the flags: without ACK the field means nothing, and a SYN or a
/// bare RST passes 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptionList<'a>,
    /// Bytes after the header; [`TcpRepr::emit`] does not write them but covers them in the checksum.
    pub payload_len: usize,
}

impl<'a> TcpRepr<'a> {
    /// A segment without options or payload and with window 0, such as a RST.
    pub const fn bare(src_port: u16, dst_port: u16, seq: u32, ack: u32, flags: TcpFlags) -> TcpRepr<'a> {
        TcpRepr {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window: 0,
            options: TcpOptionList::new(),
            payload_len: 0,
        }
    }

    /// Header length: 20 plus the options padded to a multiple of 4 (at most 60).
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.padded_len()
    }

    /// Header plus payload: the segment length, and the IPv4 payload length.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Read the fields of `p` (checked). The options stop at an End-of-List, which is not kept (it and
    /// what follows are padding). `BadOption` for a malformed option, `NoRoom` for more than
    /// [`MAX_OPTIONS`] options.
    pub fn parse(p: &Packet<&'a [u8]>) -> Result<TcpRepr<'a>> {
        // Borrow the options from the underlying bytes, not from `p`, so they outlive the view.
        let bytes: &'a [u8] = p.buffer;
        let mut options = TcpOptionList::new();
        for o in TcpOptions::new(&bytes[field::OPTIONS..p.header_len()]) {
            match o? {
                TcpOption::EndOfList => break,
                o => options.push(o)?,
            }
        }
        Ok(TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq_number(),
            ack: p.ack_number(),
            flags: p.flags(),
            window: p.window_len(),
            options,
            payload_len: p.payload().len(),
        })
    }

    /// Fill the header and options of `packet` and its checksum over the pseudo header `src -> dst`
    /// and the first [`TcpRepr::buffer_len`] bytes of the buffer: the payload, if any, is whatever is
    /// already at `header_len()..`, so write it first or call `fill_checksum` after writing it.
    ///
    /// `NoRoom` (nothing written) if the buffer is shorter than `buffer_len()` or that exceeds 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<()> {
        let (hl, len) = (self.header_len(), self.buffer_len());
        let b = packet.buffer.as_mut();
        if b.len() < len || len > 0xffff {
            return Err(Error::NoRoom);
        }
        let b = &mut b[..len];
        put16(b, field::SRC_PORT.start, self.src_port);
        put16(b, field::DST_PORT.start, self.dst_port);
        super::put32(b, field::SEQ_NUM.start, self.seq);
        super::put32(b, field::ACK_NUM.start, self.ack);
        b[field::OFF_FLAGS.start] = ((hl / 4) as u8) << 4;
        b[field::OFF_FLAGS.start + 1] = self.flags.bits();
        put16(b, field::WIN_SIZE.start, self.window);
        put16(b, field::CHECKSUM.start, 0);
        put16(b, field::URGENT.start, 0);
        self.options.emit(&mut b[field::OPTIONS..hl]);
        let ph = checksum::ipv4_pseudo_header(src, dst, super::ipv4::PROTO_TCP, len as u16);
        let c = !checksum::fold(checksum::accumulate(ph, b));
        put16(b, field::CHECKSUM.start, c);
        Ok(())
    }
}
