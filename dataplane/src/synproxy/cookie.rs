//! Keyed hashing and SYN cookies, after Linux `net/ipv4/syncookies.c`.
//!
//! # Cookie layout (our ISN in the SYN-ACK)
//!
//! ```text
//! isn = H(key, saddr, daddr, sport, dport, 0, tag 0)
//!     + client_isn
//!     + (count << 24)
//!     + ((H(key, saddr, daddr, sport, dport, count, tag 1) + mss_index) mod 2^24)      (all mod 2^32)
//! ```
//!
//! `H` is SipHash-2-4 truncated to 32 bits over the 20-byte message `saddr ‖ daddr ‖ sport ‖ dport`
//! (network order) `‖ count ‖ tag` (little-endian u32s); the tag separates Linux's two hash keys, so one
//! 128-bit key per generation is enough. The tuple is the client's SYN as received (client -> VIP).
//! `count = now / period` (default 64 s); its low 8 bits ride in the top byte of the cookie, which is how
//! the checker finds its age; `mss_index` (0..=3) indexes [`MSS_TABLE`]. Checking the ACK strips the first
//! two terms (with `ack - 1` and `seq - 1`), reads the age, and accepts if the remaining 24 bits minus the
//! second hash are a valid MSS index: 22 bits of authentication, as in Linux.
//!
//! # Timestamp-encoded options (our TSval in the SYN-ACK)
//!
//! Only when the client sent timestamps, exactly as Linux's `cookie_init_timestamp`:
//!
//! ```text
//! bit  31 ...  6 |  5  |  4   | 3 2 1 0
//!      ms clock  | ECN | SACK | wscale (0..=14; 0xf = no window scaling)
//! ```
//!
//! Our TSval clock is `now` in milliseconds mod 2^32. The TSval is `now` with its low 6 bits replaced by
//! the options, stepped back 64 ms if that would put it in the future (a later TSval must not be smaller).
//! The client echoes it in the ACK's TSecr. Without timestamps only the MSS survives: the SYN-ACK must
//! then offer neither window scaling nor SACK ([`syn_to_synack`](super::syn_to_synack) does so).
//!
//! # Secrets
//!
//! [`CookieSecrets`] holds the current and the previous key: cookies are made with the current key and
//! accepted under either, so a rotation never breaks a handshake in flight (rotate at most once per
//! cookie lifetime, `MAX_SYNCOOKIE_AGE * period`, for that guarantee to hold). The caller supplies
//! random keys and picks the rotation period; after two rotations a key is forgotten.
use super::{SynOptions, DEFAULT_MSS, MAX_WSCALE};
use crate::flow::{Addr, FlowKey, Millis};
use core::fmt;

/// A 128-bit SipHash key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SipKey {
    k0: u64,
    k1: u64,
}

impl SipKey {
    /// The key as the reference implementation reads it: two little-endian u64s.
    pub const fn from_bytes(b: [u8; 16]) -> SipKey {
        let k0 = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let k1 = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
        SipKey { k0, k1 }
    }
}

impl fmt::Debug for SipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a secret into logs.
        f.write_str("SipKey(..)")
    }
}

#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-2-4 (Aumasson & Bernstein) of `msg`: 2 compression rounds per 8-byte word, 4 finalization
/// rounds, 64-bit output. A PRF, so truncating the output is safe.
pub fn siphash24(key: &SipKey, msg: &[u8]) -> u64 {
    let mut v = [
        key.k0 ^ 0x736f_6d65_7073_6575,
        key.k1 ^ 0x646f_7261_6e64_6f6d,
        key.k0 ^ 0x6c79_6765_6e65_7261,
        key.k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut words = msg.chunks_exact(8);
    for w in &mut words {
        let m = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        v[3] ^= m;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= m;
    }
    // Last word: the remaining 0..=7 bytes, little-endian, with the message length (mod 256) on top.
    let mut last = [0u8; 8];
    let rest = words.remainder();
    last[..rest.len()].copy_from_slice(rest);
    let m = u64::from_le_bytes(last) | ((msg.len() as u64) << 56);
    v[3] ^= m;
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// Bits of the cookie below the age counter.
const COOKIEBITS: u32 = 24;
const COOKIEMASK: u32 = (1 << COOKIEBITS) - 1;
/// Low bits of our TSval that carry the options.
const TSBITS: u32 = 6;
const TSMASK: u32 = (1 << TSBITS) - 1;
/// `TS_OPT_WSCALE_MASK`: the window-scale field, and its "no window scaling" value.
pub const TS_OPT_WSCALE_MASK: u32 = 0xf;
pub const TS_OPT_SACK: u32 = 1 << 4;
pub const TS_OPT_ECN: u32 = 1 << 5;

/// Counter periods a cookie stays valid: it is accepted while `now_count - count < 2`, i.e. for between
/// one and two periods.
pub const MAX_SYNCOOKIE_AGE: u32 = 2;
/// Linux's counter period (it uses 60 s since 2013, 64 s before); override with
/// [`CookieSecrets::with_period`].
pub const DEFAULT_PERIOD_MS: Millis = 64_000;
/// MSS values a cookie can encode (Linux `msstab`, sorted): 1460 Ethernet, 1440/1452 PPPoE-ish, 1300
/// tunnels, 536 the IPv4 minimum.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// Index of the largest [`MSS_TABLE`] entry not above `mss`; 0 (536) for anything smaller, as in Linux:
/// every IPv4 host must accept 536-byte segments.
pub fn mss_index(mss: u16) -> u32 {
    MSS_TABLE.iter().rposition(|&m| mss >= m).unwrap_or(0) as u32
}

/// Why a cookie ACK was refused; each its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CookieError {
    /// The cookie does not verify under either secret: forged, wrong tuple, mangled, or made with a key
    /// rotated out twice.
    BadHash,
    /// The cookie verifies, but its counter is `MAX_SYNCOOKIE_AGE` or more periods old (and fewer than
    /// 256: beyond that, or from the future, the counter byte cannot be placed and it is `BadHash`).
    TooOld,
    /// The cookie verifies, but the ACK's TSecr is not a TSval we can have sent within a cookie lifetime,
    /// so the options in its low bits are not to be trusted. (Also what a client gets that adds
    /// timestamps to its ACK without having offered them in its SYN, which RFC 7323 forbids.)
    BadTimestamp,
}

impl CookieError {
    pub const ALL: [CookieError; 3] = [CookieError::BadHash, CookieError::TooOld, CookieError::BadTimestamp];

    /// Stable snake_case name, usable as a metric label.
    pub const fn as_str(&self) -> &'static str {
        match self {
            CookieError::BadHash => "bad_hash",
            CookieError::TooOld => "too_old",
            CookieError::BadTimestamp => "bad_timestamp",
        }
    }
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for CookieError {}

/// The cookie keys and the counter period.
#[derive(Clone)]
pub struct CookieSecrets {
    current: SipKey,
    previous: Option<SipKey>,
    period_ms: Millis,
}

impl fmt::Debug for CookieSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieSecrets")
            .field("has_previous", &self.previous.is_some())
            .field("period_ms", &self.period_ms)
            .finish_non_exhaustive()
    }
}

impl CookieSecrets {
    /// Secrets with the default 64 s period. `key` must be random (e.g. from `getrandom`).
    pub fn new(key: [u8; 16]) -> CookieSecrets {
        Self::with_period(key, DEFAULT_PERIOD_MS)
    }

    /// Secrets with a counter period of `period_ms` (at least 1 ms; at least 64 ms for the timestamp
    /// check to mean anything). A cookie lives `MAX_SYNCOOKIE_AGE` periods.
    pub fn with_period(key: [u8; 16], period_ms: Millis) -> CookieSecrets {
        CookieSecrets { current: SipKey::from_bytes(key), previous: None, period_ms: period_ms.max(1) }
    }

    /// Make `new_key` current; the current key becomes the previous one (still accepted), the previous
    /// one is forgotten.
    pub fn rotate(&mut self, new_key: [u8; 16]) {
        self.previous = Some(self.current);
        self.current = SipKey::from_bytes(new_key);
    }

    pub fn period_ms(&self) -> Millis {
        self.period_ms
    }

    /// The age counter at `now`. Truncated to 32 bits: only differences mod 256 are ever looked at.
    fn count(&self, now: Millis) -> u32 {
        (now / self.period_ms) as u32
    }

    /// How long a cookie (and so the TSval it came with) can have been out, in ms, plus the 64 ms the
    /// TSval may have been stepped back.
    fn max_ts_age(&self) -> u64 {
        (MAX_SYNCOOKIE_AGE as u64 * self.period_ms).saturating_add(1 << TSBITS)
    }
}

/// The cookie hash of a tuple of either family: addresses (4 or 16 bytes each, network order),
/// ports, counter and tag, so an IPv6 cookie covers all 256 address bits (an IPv4 tuple hashes
/// the same 20 bytes as ever).
fn cookie_hash<A: Addr>(key: &SipKey, t: &FlowKey<A>, count: u32, tag: u32) -> u32 {
    let mut m = [0u8; 44];
    let n = usize::from(A::BITS / 8);
    let (s, d) = (t.src.to_u128().to_be_bytes(), t.dst.to_u128().to_be_bytes());
    m[0..n].copy_from_slice(&s[16 - n..]);
    m[n..2 * n].copy_from_slice(&d[16 - n..]);
    let at = 2 * n;
    m[at..at + 2].copy_from_slice(&t.sport.to_be_bytes());
    m[at + 2..at + 4].copy_from_slice(&t.dport.to_be_bytes());
    m[at + 4..at + 8].copy_from_slice(&count.to_le_bytes());
    m[at + 8..at + 12].copy_from_slice(&tag.to_le_bytes());
    siphash24(key, &m[..at + 12]) as u32
}

/// The options bits of our TSval (see the module docs).
fn ts_options(syn: &SynOptions) -> u32 {
    let mut o = syn.wscale.map_or(TS_OPT_WSCALE_MASK, |w| w.min(MAX_WSCALE) as u32);
    if syn.sack_perm {
        o |= TS_OPT_SACK;
    }
    if syn.ecn {
        o |= TS_OPT_ECN;
    }
    o
}

/// Our TSval for a cookie SYN-ACK at `now`: never later than `now` on our ms clock.
fn cookie_tsval(syn: &SynOptions, now: Millis) -> u32 {
    let ts_now = now as u32;
    let ts = (ts_now & !TSMASK) | ts_options(syn);
    // Same upper bits, so this compares the low 6 bits: the options may not push the clock forward.
    if ts > ts_now {
        ts.wrapping_sub(1 << TSBITS)
    } else {
        ts
    }
}

/// The cookie ISN for a SYN on `tuple` (client -> VIP, as received) with sequence number `client_isn`
/// and options `syn`, made with the current key at `now`; plus our TSval if the client sent timestamps
/// (`None` otherwise, and the SYN-ACK then carries no timestamps option).
///
/// The client's MSS is rounded down to a [`MSS_TABLE`] entry ([`mss_index`]): that is the MSS
/// [`check_cookie`] reports, and the one to put in the SYN to the real server.
pub fn make_cookie<A: Addr>(
    secrets: &CookieSecrets,
    tuple: &FlowKey<A>,
    client_isn: u32,
    syn: &SynOptions,
    now: Millis,
) -> (u32, Option<u32>) {
    let key = &secrets.current;
    let count = secrets.count(now);
    let data = mss_index(syn.mss);
    let isn = cookie_hash(key, tuple, 0, 0)
        .wrapping_add(client_isn)
        .wrapping_add(count << COOKIEBITS)
        .wrapping_add(cookie_hash(key, tuple, count, 1).wrapping_add(data) & COOKIEMASK);
    (isn, syn.timestamps.map(|_| cookie_tsval(syn, now)))
}

/// The MSS index of `cookie` under `key`, or why not.
///
/// As in Linux, the low 24 bits only need to decode to *some* valid index, so whoever holds a valid
/// cookie can shift its ACK (or seq) by a few units and pick another MSS class for its own connection:
/// harmless, and the price of keeping the data inside the hash term.
///
/// Unlike Linux, the hash is checked even when the age is out of range, so that `TooOld` means "was
/// genuine" and forged ACKs count as `BadHash` (otherwise 254 of 256 forgeries would look too old).
fn check_with<A: Addr>(
    key: &SipKey,
    t: &FlowKey<A>,
    cookie: u32,
    client_isn: u32,
    count: u32,
) -> Result<u32, CookieError> {
    let c = cookie.wrapping_sub(cookie_hash(key, t, 0, 0).wrapping_add(client_isn));
    // c = (made_count << 24) + ((H1 + data) mod 2^24): no carry into the top byte.
    let diff = count.wrapping_sub(c >> COOKIEBITS) & (u32::MAX >> COOKIEBITS);
    let data = c.wrapping_sub(cookie_hash(key, t, count.wrapping_sub(diff), 1)) & COOKIEMASK;
    if data as usize >= MSS_TABLE.len() {
        Err(CookieError::BadHash)
    } else if diff >= MAX_SYNCOOKIE_AGE {
        Err(CookieError::TooOld)
    } else {
        Ok(data)
    }
}

/// Validate the client's ACK completing a cookie handshake on `tuple` (client -> VIP, the same direction
/// as the SYN): `ack_seq` is the ACK's acknowledgment number minus 1 (our cookie ISN), `client_seq` its
/// sequence number minus 1 (the client's ISN), `ack_ts` its timestamps option `(tsval, tsecr)` if any.
///
/// Returns what the SYN negotiated, as far as the cookie remembers: `mss` is the table value; with
/// timestamps, `wscale`, `sack_perm` and `ecn` come from the TSecr and `timestamps` is `ack_ts`;
/// without, they are `None`/false (the SYN-ACK offered only MSS). `ecn` says the client asked for ECN
/// in its SYN; the SYN-ACK did not grant it.
///
/// Cost: two SipHash per key tried (up to four for a bad ACK), no allocation.
pub fn check_cookie<A: Addr>(
    secrets: &CookieSecrets,
    tuple: &FlowKey<A>,
    ack_seq: u32,
    client_seq: u32,
    ack_ts: Option<(u32, u32)>,
    now: Millis,
) -> Result<SynOptions, CookieError> {
    let count = secrets.count(now);
    let mut found = check_with(&secrets.current, tuple, ack_seq, client_seq, count);
    if let (Err(e), Some(prev)) = (found, &secrets.previous) {
        found = match check_with(prev, tuple, ack_seq, client_seq, count) {
            // A genuine-but-old cookie under either key is reported as such.
            Err(CookieError::BadHash) => Err(e),
            r => r,
        };
    }
    let mss = MSS_TABLE[found? as usize];
    let Some((_, tsecr)) = ack_ts else {
        return Ok(SynOptions { mss, ..SynOptions::default() });
    };
    // The TSecr must echo a TSval of ours from within the cookie's lifetime (it is at most `now`).
    if ((now as u32).wrapping_sub(tsecr) as u64) > secrets.max_ts_age() {
        return Err(CookieError::BadTimestamp);
    }
    let w = tsecr & TS_OPT_WSCALE_MASK;
    Ok(SynOptions {
        mss,
        // 15 means none; 0..=14 are all valid shifts.
        wscale: (w != TS_OPT_WSCALE_MASK).then_some(w as u8),
        sack_perm: tsecr & TS_OPT_SACK != 0,
        timestamps: ack_ts,
        ecn: tsecr & TS_OPT_ECN != 0,
    })
}

// DEFAULT_MSS is what a SYN without an MSS option is assumed to say; it must be the table's floor.
const _: () = assert!(MSS_TABLE[0] == DEFAULT_MSS);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Proto;
    use crate::synproxy::syn_options;
    use crate::synproxy::testutil::{self, CLIENT, CPORT, VIP, VPORT};
    use crate::wire::testutil::Rng;
    use crate::wire::{Ipv4Packet, TcpPacket};
    use std::net::Ipv4Addr;

    /// The reference test vectors (veorq/SipHash `vectors.h`, `vectors_sip64`): key 00..0f, message
    /// 00..(n-1) for n = 0..63, output as little-endian bytes.
    const VECTORS: [&str; 64] = [
        "310e0edd47db6f72",
        "fd67dc93c539f874",
        "5a4fa9d909806c0d",
        "2d7efbd796666785",
        "b7877127e09427cf",
        "8da699cd64557618",
        "cee3fe586e46c9cb",
        "37d1018bf50002ab",
        "6224939a79f5f593",
        "b0e4a90bdf82009e",
        "f3b9dd94c5bb5d7a",
        "a7ad6b22462fb3f4",
        "fbe50e86bc8f1e75",
        "903d84c02756ea14",
        "eef27a8e90ca23f7",
        "e545be4961ca29a1",
        "db9bc2577fcc2a3f",
        "9447be2cf5e99a69",
        "9cd38d96f0b3c14b",
        "bd6179a71dc96dbb",
        "98eea21af25cd6be",
        "c7673b2eb0cbf2d0",
        "883ea3e395675393",
        "c8ce5ccd8c030ca8",
        "94af49f6c650adb8",
        "eab8858ade92e1bc",
        "f315bb5bb835d817",
        "adcf6b0763612e2f",
        "a5c91da7acaa4dde",
        "716595876650a2a6",
        "28ef495c53a387ad",
        "42c341d8fa92d832",
        "ce7cf2722f512771",
        "e37859f94623f3a7",
        "381205bb1ab0e012",
        "ae97a10fd434e015",
        "b4a31508beff4d31",
        "81396229f0907902",
        "4d0cf49ee5d4dcca",
        "5c73336a76d8bf9a",
        "d0a704536ba93e0e",
        "925958fcd6420cad",
        "a915c29bc8067318",
        "952b79f3bc0aa6d4",
        "f21df2e41d4535f9",
        "87577519048f53a9",
        "10a56cf5dfcd9adb",
        "eb75095ccd986cd0",
        "51a9cb9ecba312e6",
        "96afadfc2ce666c7",
        "72fe52975a4364ee",
        "5a1645b276d592a1",
        "b274cb8ebf87870a",
        "6f9bb4203de7b381",
        "eaecb2a30b22a87f",
        "9924a43cc1315724",
        "bd838d3aafbf8db7",
        "0b1a2a3265d51aea",
        "135079a3231ce660",
        "932b2846e4d70666",
        "e1915f5cb1eca46c",
        "f325965ca16d629f",
        "575ff28e60381be5",
        "724506eb4c328a95",
    ];

    fn seq_bytes<const N: usize>() -> [u8; N] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn siphash_reference_vectors() {
        let key = SipKey::from_bytes(seq_bytes::<16>());
        let msg = seq_bytes::<64>();
        for (n, hex) in VECTORS.iter().enumerate() {
            let want = u64::from_str_radix(hex, 16).unwrap().swap_bytes();
            assert_eq!(siphash24(&key, &msg[..n]), want, "length {n}");
        }
        // The paper's worked example (appendix A): 15-byte message.
        assert_eq!(siphash24(&key, &msg[..15]), 0xa129_ca61_49be_45e5);
        assert_eq!(format!("{key:?}"), "SipKey(..)");
    }

    const KEY_A: [u8; 16] = *b"rvs-cookie-key-A";
    const KEY_B: [u8; 16] = *b"rvs-cookie-key-B";
    const KEY_C: [u8; 16] = *b"rvs-cookie-key-C";

    fn tuple() -> FlowKey {
        FlowKey { proto: Proto::Tcp, src: CLIENT, dst: VIP, sport: CPORT, dport: VPORT }
    }

    fn opts(mss: u16, wscale: Option<u8>, sack: bool, ts: bool, ecn: bool) -> SynOptions {
        SynOptions { mss, wscale, sack_perm: sack, timestamps: ts.then_some((0x1234_5678, 0)), ecn }
    }

    /// make then check as a client would: ACK = isn + 1, seq = client_isn + 1, TSecr = our TSval.
    fn round_trip(
        s: &CookieSecrets,
        syn: &SynOptions,
        isn: u32,
        made: Millis,
        checked: Millis,
    ) -> Result<SynOptions, CookieError> {
        let (cookie, tsval) = make_cookie(s, &tuple(), isn, syn, made);
        let ack = cookie.wrapping_add(1);
        check_cookie(s, &tuple(), ack.wrapping_sub(1), isn, tsval.map(|v| (0xabcd, v)), checked)
    }

    #[test]
    fn mss_classes() {
        let cases = [(0, 536), (100, 536), (535, 536), (536, 536), (1299, 536), (1300, 1300), (1439, 1300)];
        let more = [(1440, 1440), (1452, 1440), (1459, 1440), (1460, 1460), (9000, 1460), (u16::MAX, 1460)];
        for (mss, want) in cases.into_iter().chain(more) {
            assert_eq!(MSS_TABLE[mss_index(mss) as usize], want, "mss {mss}");
        }
    }

    #[test]
    fn round_trip_all_option_combinations() {
        let s = CookieSecrets::new(KEY_A);
        let mut rng = Rng::new(70);
        let now = 1_000_000_007;
        for (i, &mss) in [536u16, 1300, 1440, 1460, 1200, 1452, 8960].iter().enumerate() {
            for wscale in (0..=14).map(Some).chain([None]) {
                for sack in [false, true] {
                    for ecn in [false, true] {
                        for ts in [false, true] {
                            let syn = opts(mss, wscale, sack, ts, ecn);
                            let isn = rng.u32();
                            let later = now + rng.below(DEFAULT_PERIOD_MS as usize) as u64;
                            let got = round_trip(&s, &syn, isn, now, later).unwrap();
                            let want_mss = MSS_TABLE[mss_index(mss) as usize];
                            assert_eq!(got.mss, want_mss, "case {i}");
                            if ts {
                                let (_, tsval) = make_cookie(&s, &tuple(), isn, &syn, now);
                                let tsval = tsval.unwrap();
                                assert_eq!(
                                    got,
                                    SynOptions {
                                        mss: want_mss,
                                        wscale,
                                        sack_perm: sack,
                                        timestamps: Some((0xabcd, tsval)),
                                        ecn
                                    }
                                );
                            } else {
                                // Without timestamps only the MSS is remembered, as in Linux.
                                assert_eq!(got, SynOptions { mss: want_mss, ..SynOptions::default() });
                                assert_eq!(make_cookie(&s, &tuple(), isn, &syn, now).1, None);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn tsval_encoding_is_linux_layout_and_never_ahead() {
        let syn = opts(1460, Some(7), true, true, false);
        for now in [0u64, 5, 63, 64, 100, 0xffff_ffff, 0x1_0000_0003, 123_456_789] {
            let tsval = make_cookie(&CookieSecrets::new(KEY_A), &tuple(), 1, &syn, now).1.unwrap();
            assert_eq!(tsval & 0x3f, 7 | TS_OPT_SACK, "now {now}");
            let behind = (now as u32).wrapping_sub(tsval);
            assert!(behind < 64, "now {now}: tsval {tsval:#x} is {behind} ms behind");
        }
        let no_ws = opts(1460, None, false, true, true);
        let tsval = make_cookie(&CookieSecrets::new(KEY_A), &tuple(), 1, &no_ws, 6400).1.unwrap();
        assert_eq!(tsval, 6400 - 64 + (0xf | TS_OPT_ECN));
    }

    #[test]
    fn age_limits() {
        let s = CookieSecrets::new(KEY_A);
        let syn = opts(1460, Some(7), true, false, false);
        let p = DEFAULT_PERIOD_MS;
        let made = 10 * p + p / 2;
        // Valid through the end of the next period, refused from the one after (counter diff 2).
        for checked in [made, 11 * p, 12 * p - 1] {
            assert!(round_trip(&s, &syn, 42, made, checked).is_ok(), "checked {checked}");
        }
        for checked in [12 * p, 13 * p, 200 * p] {
            assert_eq!(
                round_trip(&s, &syn, 42, made, checked),
                Err(CookieError::TooOld),
                "checked {checked}"
            );
        }
        // A counter from the future is refused too.
        assert_eq!(round_trip(&s, &syn, 42, made, 9 * p), Err(CookieError::BadHash));
        // Beyond 256 periods the counter byte aliases and the hash no longer matches.
        assert_eq!(round_trip(&s, &syn, 42, made, made + 256 * p), Err(CookieError::BadHash));
        // Counter wraparound of the top byte (count 255 -> 256) is fine.
        assert!(round_trip(&s, &syn, 42, 255 * p, 256 * p + 1).is_ok());
        // A custom period.
        let s = CookieSecrets::with_period(KEY_A, 1000);
        assert_eq!(s.period_ms(), 1000);
        assert!(round_trip(&s, &syn, 42, 5000, 6999).is_ok());
        assert_eq!(round_trip(&s, &syn, 42, 5000, 7000), Err(CookieError::TooOld));
    }

    #[test]
    fn wrong_tuple_fields_and_numbers_are_bad_hash() {
        let s = CookieSecrets::new(KEY_A);
        let syn = opts(1440, None, false, false, false);
        let (isn, now) = (0xffff_fff0, 77_777);
        let (cookie, _) = make_cookie(&s, &tuple(), isn, &syn, now);
        assert_eq!(check_cookie(&s, &tuple(), cookie, isn, None, now).unwrap().mss, 1440);
        let t = tuple();
        let changed = [
            FlowKey { src: Ipv4Addr::new(198, 51, 100, 24), ..t },
            FlowKey { dst: Ipv4Addr::new(192, 0, 2, 81), ..t },
            FlowKey { sport: CPORT + 1, ..t },
            FlowKey { dport: VPORT + 1, ..t },
            t.reversed(),
        ];
        for wrong in changed {
            assert_eq!(
                check_cookie(&s, &wrong, cookie, isn, None, now),
                Err(CookieError::BadHash),
                "{wrong:?}"
            );
        }
        // Off by 4 or more, or a different counter byte. (Off by less can land on another valid MSS
        // index: the cookie is malleable in its low 2 bits, as Linux's is; only its holder can do that.)
        let wrong =
            [(cookie.wrapping_add(4), isn), (cookie, isn.wrapping_sub(4)), (cookie ^ 0x0100_0000, isn)];
        for (ack, seq) in wrong {
            assert_eq!(check_cookie(&s, &t, ack, seq, None, now), Err(CookieError::BadHash));
        }
        // Random forgeries: essentially never accepted (22 bits of authentication), never "too old".
        let mut rng = Rng::new(71);
        let mut accepted = 0;
        for _ in 0..20_000 {
            match check_cookie(&s, &t, rng.u32(), rng.u32(), None, now) {
                Ok(_) => accepted += 1,
                Err(e) => assert_eq!(e, CookieError::BadHash),
            }
        }
        assert!(accepted <= 1, "{accepted}");
    }

    #[test]
    fn rotation_keeps_one_previous_key() {
        let mut s = CookieSecrets::new(KEY_A);
        let syn = opts(1300, Some(2), false, true, false);
        let now = 5_000_000;
        let made_a = make_cookie(&s, &tuple(), 9, &syn, now);
        s.rotate(KEY_B);
        let made_b = make_cookie(&s, &tuple(), 9, &syn, now);
        assert_ne!(made_a.0, made_b.0, "new cookies use the new key");
        let check = |s: &CookieSecrets, (c, ts): (u32, Option<u32>)| {
            check_cookie(s, &tuple(), c, 9, ts.map(|v| (1, v)), now + 1000)
        };
        assert_eq!(check(&s, made_a).unwrap().wscale, Some(2), "previous key still accepted");
        assert_eq!(check(&s, made_b).unwrap().mss, 1300);
        s.rotate(KEY_C);
        assert_eq!(check(&s, made_a), Err(CookieError::BadHash), "rotated out twice");
        assert!(check(&s, made_b).is_ok());
        // Old under the previous key is still reported as old, not forged.
        let old = make_cookie(&s, &tuple(), 9, &syn, now);
        s.rotate(KEY_A);
        let late = check_cookie(&s, &tuple(), old.0, 9, None, now + 3 * DEFAULT_PERIOD_MS);
        assert_eq!(late, Err(CookieError::TooOld));
        assert!(!format!("{s:?}").contains("rvs-cookie"));
    }

    #[test]
    fn tsecr_must_be_a_recent_tsval_of_ours() {
        let s = CookieSecrets::new(KEY_A);
        let syn = opts(1460, Some(7), true, true, false);
        let now = 3_000_000_000u64;
        let (cookie, tsval) = make_cookie(&s, &tuple(), 1, &syn, now);
        let tsval = tsval.unwrap();
        let check = |tsecr: u32, at: Millis| check_cookie(&s, &tuple(), cookie, 1, Some((5, tsecr)), at);
        assert!(check(tsval, now).is_ok());
        assert!(check(tsval, now + DEFAULT_PERIOD_MS).is_ok());
        // From the future, or from before the cookie could exist.
        assert_eq!(check(tsval.wrapping_add(1000), now), Err(CookieError::BadTimestamp));
        assert_eq!(
            check(tsval.wrapping_sub(3 * DEFAULT_PERIOD_MS as u32), now),
            Err(CookieError::BadTimestamp)
        );
        // Our ms clock wraps at 2^32 (~49.7 days) and the check is modular.
        let now = (1u64 << 32) + 10;
        let (cookie, tsval) = make_cookie(&s, &tuple(), 1, &syn, now);
        assert!(tsval.unwrap() > 0xffff_ff00, "stepped back across the wrap");
        let got = check_cookie(&s, &tuple(), cookie, 1, Some((5, tsval.unwrap())), now + 100).unwrap();
        assert_eq!((got.wscale, got.sack_perm), (Some(7), true));
    }

    #[test]
    fn through_real_packets() {
        // A SYN built with the wire emitters: make from the parsed SYN, check from a parsed ACK.
        let s = CookieSecrets::new(KEY_B);
        let now = 42_424_242;
        let isn = 0xfffffffe; // the ACK's seq wraps
        let syn = testutil::syn(isn, &testutil::syn_opts(Some(1452), Some(9), true, Some(0xdead_beef)));
        let ip = Ipv4Packet::new_checked(&syn[..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        let key = crate::wire::flow_key(&syn).unwrap();
        assert_eq!(key, tuple());
        let so = syn_options(&tcp).unwrap();
        let (cookie, tsval) = make_cookie(&s, &key, tcp.seq_number(), &so, now);

        let ack_opts = [1, 1, 8, 10, 0xde, 0xad, 0xbe, 0xf0, 0, 0, 0, 0];
        let mut ack_opts = ack_opts;
        ack_opts[8..12].copy_from_slice(&tsval.unwrap().to_be_bytes());
        let flags = crate::wire::TcpFlags::ACK;
        let ack = testutil::segment(
            (CLIENT, CPORT),
            (VIP, VPORT),
            (isn.wrapping_add(1), cookie.wrapping_add(1)),
            flags,
            &ack_opts,
            &[],
            &[],
        );
        let ip = Ipv4Packet::new_checked(&ack[..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        let ts = tcp.options_iter().find_map(|o| match o {
            Ok(crate::wire::TcpOption::Timestamps { tsval, tsecr }) => Some((tsval, tsecr)),
            _ => None,
        });
        let got = check_cookie(
            &s,
            &crate::wire::flow_key(&ack).unwrap(),
            tcp.ack_number().wrapping_sub(1),
            tcp.seq_number().wrapping_sub(1),
            ts,
            now + 3000,
        )
        .unwrap();
        assert_eq!(
            got,
            SynOptions {
                mss: 1440,
                wscale: Some(9),
                sack_perm: true,
                timestamps: Some((0xdead_bef0, tsval.unwrap())),
                ecn: false
            }
        );
    }

    #[test]
    fn error_names() {
        let names: Vec<_> = CookieError::ALL.iter().map(|e| e.to_string()).collect();
        assert_eq!(names, ["bad_hash", "too_old", "bad_timestamp"]);
    }
}
