//! Flow identity shared by the connection table, schedulers and the packet path.
//!
//! Time everywhere in the dataplane is `u64` milliseconds since an arbitrary epoch chosen by the caller
//! (the daemon derives it from the TSC once per burst; tests pass whatever they like).
use std::fmt::Debug;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Milliseconds since the caller's epoch.
pub type Millis = u64;

/// Transport protocols the gateway balances.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(u8)]
pub enum Proto {
    Tcp = 6,
    Udp = 17,
}

impl Proto {
    /// The IPv4 protocol number.
    pub const fn number(self) -> u8 {
        self as u8
    }

    pub const fn from_number(n: u8) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// An IP address family: what flow keys, routes and neighbours are generic over. IPv4 is the
/// default everywhere, so `FlowKey` alone means an IPv4 key; IPv6 tables are `FlowKey<Ipv6Addr>`,
/// `Routes<Ipv6Addr>`, `Neighbours<F, Ipv6Addr>` of their own (their entries are larger, and a
/// family's tables never pay for the other's address size).
pub trait Addr: Copy + Eq + Hash + Debug + Send + Sync + 'static {
    /// Address length in bits (32 or 128): the longest prefix.
    const BITS: u8;
    const UNSPECIFIED: Self;
    /// The address as an integer, IPv4 zero-extended: prefix arithmetic for both families.
    fn to_u128(self) -> u128;
    fn from_u128(v: u128) -> Self;
    /// A tuple's two addresses packed as the connection entry stores them and its hash reads
    /// them (IPv4: one word, `src << 32 | dst`).
    type Pair: Copy + Eq + Debug + Send + Sync + 'static;
    /// A [`Self::Pair`] as 64-bit words, all of its bits: what the keyed hash mixes.
    type Words: AsRef<[u64]>;
    const PAIR_ZERO: Self::Pair;
    fn pair(src: Self, dst: Self) -> Self::Pair;
    fn pair_src(p: Self::Pair) -> Self;
    fn pair_dst(p: Self::Pair) -> Self;
    fn pair_words(p: Self::Pair) -> Self::Words;
    /// The low 64 bits folded with the high 64 (all of an IPv4 address): cheap input for
    /// direct-mapped indexes (not for hashes an attacker can aim at).
    #[inline]
    fn fold64(self) -> u64 {
        let v = self.to_u128();
        (v as u64) ^ ((v >> 64) as u64)
    }
}

impl Addr for Ipv4Addr {
    const BITS: u8 = 32;
    const UNSPECIFIED: Self = Ipv4Addr::UNSPECIFIED;
    type Pair = u64;
    type Words = [u64; 1];
    const PAIR_ZERO: u64 = 0;
    #[inline(always)]
    fn pair(src: Self, dst: Self) -> u64 {
        (u32::from(src) as u64) << 32 | u32::from(dst) as u64
    }
    #[inline(always)]
    fn pair_src(p: u64) -> Self {
        Ipv4Addr::from((p >> 32) as u32)
    }
    #[inline(always)]
    fn pair_dst(p: u64) -> Self {
        Ipv4Addr::from(p as u32)
    }
    #[inline(always)]
    fn pair_words(p: u64) -> [u64; 1] {
        [p]
    }
    #[inline]
    fn to_u128(self) -> u128 {
        u32::from(self) as u128
    }
    #[inline]
    fn from_u128(v: u128) -> Self {
        Ipv4Addr::from(v as u32)
    }
}

impl Addr for Ipv6Addr {
    const BITS: u8 = 128;
    const UNSPECIFIED: Self = Ipv6Addr::UNSPECIFIED;
    type Pair = [u128; 2];
    type Words = [u64; 4];
    const PAIR_ZERO: [u128; 2] = [0; 2];
    #[inline(always)]
    fn pair(src: Self, dst: Self) -> [u128; 2] {
        [u128::from(src), u128::from(dst)]
    }
    #[inline(always)]
    fn pair_src(p: [u128; 2]) -> Self {
        Ipv6Addr::from(p[0])
    }
    #[inline(always)]
    fn pair_dst(p: [u128; 2]) -> Self {
        Ipv6Addr::from(p[1])
    }
    #[inline(always)]
    fn pair_words(p: [u128; 2]) -> [u64; 4] {
        [p[0] as u64, (p[0] >> 64) as u64, p[1] as u64, (p[1] >> 64) as u64]
    }
    #[inline]
    fn to_u128(self) -> u128 {
        u128::from(self)
    }
    #[inline]
    fn from_u128(v: u128) -> Self {
        Ipv6Addr::from(v)
    }
}

/// The network mask of a `len`-bit prefix in family `A`, as an integer (see [`Addr::to_u128`]).
#[inline]
pub fn prefix_mask<A: Addr>(len: u8) -> u128 {
    let len = len.min(A::BITS) as u32;
    if len == 0 {
        0
    } else {
        let all = if A::BITS == 128 { u128::MAX } else { (1u128 << A::BITS) - 1 };
        all & !all.checked_shr(len).unwrap_or(0)
    }
}

/// One direction of a connection exactly as it appears on the wire: source first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FlowKey<A: Addr = Ipv4Addr> {
    pub proto: Proto,
    pub src: A,
    pub dst: A,
    pub sport: u16,
    pub dport: u16,
}

/// An IPv6 flow key.
pub type FlowKey6 = FlowKey<Ipv6Addr>;

impl<A: Addr> FlowKey<A> {
    /// The same flow seen from the other end.
    pub const fn reversed(&self) -> FlowKey<A> {
        FlowKey { proto: self.proto, src: self.dst, dst: self.src, sport: self.dport, dport: self.sport }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_masks_for_both_families() {
        assert_eq!(prefix_mask::<Ipv4Addr>(0), 0);
        assert_eq!(prefix_mask::<Ipv4Addr>(24), 0xffff_ff00);
        assert_eq!(prefix_mask::<Ipv4Addr>(32), 0xffff_ffff);
        assert_eq!(prefix_mask::<Ipv4Addr>(40), 0xffff_ffff, "clamped to the family's length");
        assert_eq!(prefix_mask::<Ipv6Addr>(128), u128::MAX);
        assert_eq!(prefix_mask::<Ipv6Addr>(48), u128::MAX << 80);
        let a: Ipv6Addr = "2001:2::1".parse().unwrap();
        assert_eq!(
            Ipv6Addr::from_u128(a.to_u128() & prefix_mask::<Ipv6Addr>(48)),
            "2001:2::".parse::<Ipv6Addr>().unwrap()
        );
        let k6 = FlowKey6 { proto: Proto::Tcp, src: a, dst: Ipv6Addr::LOCALHOST, sport: 1, dport: 2 };
        assert_eq!(k6.reversed().reversed(), k6);
        assert_eq!(Ipv4Addr::new(1, 2, 3, 4).fold64(), 0x0102_0304);
    }
}
