//! Real-server selection: the LVS/IPVS schedulers (rr, wrr, lc, wlc, sh, mh), overload thresholds and
//! persistence templates.
//!
//! Invariants:
//! - A real server is *usable* iff `weight > 0 && !overloaded`; no scheduler ever returns an unusable one.
//! - [`Scheduler::new`] is the only place that allocates (wrr bookkeeping, the sh bucket table, the Maglev
//!   lookup table). [`Scheduler::pick`] never allocates and is bounded: O(reals) for rr/wrr/lc/wlc, O(1)
//!   expected and O(table) worst case for sh/mh fallback.
//! - The `reals` slice given to `pick` must be the same pool, in the same order, as the one given to `new`;
//!   only `weight`, `active`, `inactive` and `overloaded` may change in between. Any change of membership
//!   or order requires a rebuild with `new` (LVS does the same on add/del/upd dest). Should the caller get
//!   this wrong, `pick` still never panics nor returns an out-of-range index.
//! - Deterministic: no clocks, no random seeds. The same pool and the same client always give the same pick
//!   for the hashing schedulers, on every worker and every host.
//!
//! Semantics follow the Linux kernel IPVS modules (`net/netfilter/ipvs/ip_vs_*.c`); where we differ it is
//! stated on the item.
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

mod mh;
mod persist;
mod sh;
mod wrr;

pub use mh::MH_TAB_SIZE;
pub use persist::{PersistError, Persistence};
pub use sh::SH_TAB_SIZE;

/// The LVS scheduler names this gateway implements.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SchedKind {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sh,
    Mh,
}

impl SchedKind {
    pub const ALL: [SchedKind; 6] =
        [SchedKind::Rr, SchedKind::Wrr, SchedKind::Lc, SchedKind::Wlc, SchedKind::Sh, SchedKind::Mh];

    /// The LVS (`ipvsadm -s`) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Sh => "sh",
            SchedKind::Mh => "mh",
        }
    }
}

impl fmt::Display for SchedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scheduler name that is not one of [`SchedKind::ALL`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UnknownSched(pub String);

impl fmt::Display for UnknownSched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown scheduler {:?} (expected one of rr, wrr, lc, wlc, sh, mh)", self.0)
    }
}

impl std::error::Error for UnknownSched {}

impl FromStr for SchedKind {
    type Err = UnknownSched;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchedKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownSched(s.to_owned()))
    }
}

/// What the scheduler may look at for one real server; the caller keeps these up to date.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RealView {
    /// Stable identity of the real (see [`RealView::id_of`]). Only the hashing schedulers use it: the
    /// Maglev table depends on identities, not on positions in the pool, so reordering or removing
    /// other reals does not reshuffle everybody.
    pub id: u64,
    pub weight: u32,
    pub active: u32,
    pub inactive: u32,
    pub overloaded: bool,
}

impl RealView {
    /// The conventional identity of a real: its address and port, which is what LVS hashes.
    pub const fn id_of(addr: Ipv4Addr, port: u16) -> u64 {
        ((u32::from_be_bytes(addr.octets()) as u64) << 16) | port as u64
    }

    /// [`RealView::id_of`] for either family: an IPv4 address gives the same identity; an IPv6
    /// one is folded to 64 bits and mixed (a Maglev identity, not a hash an attacker aims at).
    pub fn id_of_addr<A: crate::flow::Addr>(addr: A, port: u16) -> u64 {
        if A::BITS == 32 {
            return (addr.to_u128() as u64) << 16 | port as u64;
        }
        let v = addr.to_u128();
        let x = (v as u64)
            ^ ((v >> 64) as u64).rotate_left(29)
            ^ (port as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x.wrapping_mul(0xff51_afd7_ed55_8ccd) ^ (x >> 33)
    }

    /// A fresh real with no connections.
    pub const fn new(id: u64, weight: u32) -> RealView {
        RealView { id, weight, active: 0, inactive: 0, overloaded: false }
    }

    /// LVS usability rule, shared by every scheduler.
    #[inline]
    pub const fn usable(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }

    /// LVS `ip_vs_dest_conn_overhead`: active connections cost 256 times an inactive one. Widened so that
    /// no counter values can overflow it.
    #[inline]
    pub const fn overhead(&self) -> u64 {
        ((self.active as u64) << 8) + self.inactive as u64
    }
}

/// Options of the hashing schedulers (sh, mh), as the LVS `sh-port`/`sh-fallback` and
/// `mh-port`/`mh-fallback` service flags. Ignored by the other schedulers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SchedFlags {
    /// Hash the client port as well as its address (spreads one NATed address over several reals, at
    /// the cost of per-client affinity).
    pub hash_port: bool,
    /// When the hashed real is unusable, walk on to another one instead of failing. Default: on, since a
    /// gateway with no cache-bypass path has nothing better to do with the connection.
    pub fallback: bool,
}

impl Default for SchedFlags {
    fn default() -> Self {
        SchedFlags { hash_port: false, fallback: true }
    }
}

/// One service's scheduler state. Build with [`Scheduler::new`] on every pool change.
#[derive(Clone)]
pub struct Scheduler {
    kind: SchedKind,
    flags: SchedFlags,
    state: State,
}

#[derive(Clone)]
enum State {
    /// Position of the last pick; `None` is the LVS list head (nothing picked yet).
    Rr {
        last: Option<usize>,
    },
    Wrr(wrr::Wrr),
    Lc,
    Wlc,
    Sh(sh::ShTable),
    Mh(mh::MhTable),
}

impl fmt::Debug for Scheduler {
    // The hashing tables are tens of KiB of indices; printing them helps nobody.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler").field("kind", &self.kind).field("flags", &self.flags).finish()
    }
}

impl Scheduler {
    /// Built once per pool change (may allocate: wrr bookkeeping, sh/Maglev table). Default flags.
    pub fn new(kind: SchedKind, reals: &[RealView]) -> Scheduler {
        Scheduler::with_flags(kind, reals, SchedFlags::default())
    }

    /// As [`Scheduler::new`] with explicit sh/mh flags.
    pub fn with_flags(kind: SchedKind, reals: &[RealView], flags: SchedFlags) -> Scheduler {
        let state = match kind {
            SchedKind::Rr => State::Rr { last: None },
            SchedKind::Wrr => State::Wrr(wrr::Wrr::new(reals)),
            SchedKind::Lc => State::Lc,
            SchedKind::Wlc => State::Wlc,
            SchedKind::Sh => State::Sh(sh::ShTable::new(reals)),
            SchedKind::Mh => State::Mh(mh::MhTable::new(reals)),
        };
        Scheduler { kind, flags, state }
    }

    pub fn kind(&self) -> SchedKind {
        self.kind
    }

    pub fn flags(&self) -> SchedFlags {
        self.flags
    }

    /// Per new connection. Never allocates. Returns an index into `reals`, or `None` when no real server is
    /// usable (or, for sh/mh without fallback, when the hashed one is not). `client_port` is in host order
    /// and only matters to sh/mh with [`SchedFlags::hash_port`].
    pub fn pick(&mut self, reals: &[RealView], client: Ipv4Addr, client_port: u16) -> Option<usize> {
        let port = if self.flags.hash_port { client_port } else { 0 };
        match &mut self.state {
            State::Rr { last } => pick_rr(last, reals),
            State::Wrr(w) => w.pick(reals),
            State::Lc => pick_lc(reals),
            State::Wlc => pick_wlc(reals),
            State::Sh(t) => t.pick(reals, client, port, self.flags.fallback),
            State::Mh(t) => t.pick(reals, client, port, self.flags.fallback),
        }
    }
}

/// The 32-bit value an IPv6 client is hashed by in sh and mh: its four words XORed, as LVS's
/// `ip_vs_sh_hashkey` folds an IPv6 address, so a pool migrated from LVS maps clients the same.
#[inline]
pub fn fold_v6(a: std::net::Ipv6Addr) -> Ipv4Addr {
    let v = u128::from(a);
    Ipv4Addr::from((v as u32) ^ ((v >> 32) as u32) ^ ((v >> 64) as u32) ^ ((v >> 96) as u32))
}

/// ip_vs_rr: scan from the real after the last pick, wrapping, and stop once every real has been looked at.
/// The cursor does not move when nothing is usable, so the rotation resumes where it was.
fn pick_rr(last: &mut Option<usize>, reals: &[RealView]) -> Option<usize> {
    let n = reals.len();
    let start = match *last {
        Some(l) if l < n => l + 1,
        _ => 0,
    };
    let found = (0..n).map(|k| (start + k) % n).find(|&i| reals[i].usable())?;
    *last = Some(found);
    Some(found)
}

/// ip_vs_lc: smallest overhead among usable reals; the first one wins ties.
fn pick_lc(reals: &[RealView]) -> Option<usize> {
    let mut least: Option<(usize, u64)> = None;
    for (i, r) in reals.iter().enumerate() {
        if !r.usable() {
            continue;
        }
        let oh = r.overhead();
        match least {
            Some((_, l)) if l <= oh => {}
            _ => least = Some((i, oh)),
        }
    }
    least.map(|(i, _)| i)
}

/// ip_vs_wlc: smallest overhead/weight, compared as `loh * w > oh * lw` so that no division (and no
/// rounding) is involved. u128 because overhead (< 2^41) times weight (< 2^32) does not fit in u64.
/// The first one wins ties.
fn pick_wlc(reals: &[RealView]) -> Option<usize> {
    let mut least: Option<(usize, u128, u128)> = None; // (index, overhead, weight)
    for (i, r) in reals.iter().enumerate() {
        if !r.usable() {
            continue;
        }
        let (oh, w) = (u128::from(r.overhead()), u128::from(r.weight));
        match least {
            Some((_, loh, lw)) if loh * w <= oh * lw => {}
            _ => least = Some((i, oh, w)),
        }
    }
    least.map(|(i, _, _)| i)
}

/// LVS destination thresholds (`ip_vs_bind_dest`/`ip_vs_unbind_dest`), evaluated whenever `conns`
/// (active + inactive) changes:
/// - `upper == 0` means no limit; `conns >= upper` sets `overloaded`;
/// - an overloaded real is cleared only when `conns < lower`, or, when `lower == 0`, when
///   `conns < 3/4 * upper` (the hysteresis that stops it flapping at the limit);
/// - with neither threshold the flag is simply cleared.
pub fn update_overload(overloaded: &mut bool, conns: u32, upper: u32, lower: u32) {
    let (conns, upper, lower) = (u64::from(conns), u64::from(upper), u64::from(lower));
    if upper != 0 && conns >= upper {
        *overloaded = true;
    } else if lower != 0 {
        if conns < lower {
            *overloaded = false;
        }
    } else if upper != 0 {
        if conns * 4 < upper * 3 {
            *overloaded = false;
        }
    } else {
        *overloaded = false;
    }
}

/// Greatest common divisor of the positive weights; 0 when there are none.
fn gcd_weight(reals: &[RealView]) -> u32 {
    fn gcd(mut a: u32, mut b: u32) -> u32 {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
    reals.iter().map(|r| r.weight).filter(|&w| w > 0).fold(0, gcd)
}

/// A bijective 64-bit mixer (the splitmix64 finaliser). Stable across builds and hosts, unlike std's
/// `DefaultHasher`, which matters because hashed picks must agree between workers and restarts.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether any real can take a connection; lets the hashing fallbacks give up in O(reals) instead of
/// probing a whole table when everything is down.
#[inline]
fn any_usable(reals: &[RealView]) -> bool {
    reals.iter().any(RealView::usable)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn pool(weights: &[u32]) -> Vec<RealView> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| RealView::new(RealView::id_of(Ipv4Addr::new(10, 0, 0, i as u8 + 1), 80), w))
            .collect()
    }

    const C: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn picks(s: &mut Scheduler, reals: &[RealView], n: usize) -> Vec<Option<usize>> {
        (0..n).map(|_| s.pick(reals, C, 1000)).collect()
    }

    #[test]
    fn kind_names_round_trip() {
        for k in SchedKind::ALL {
            assert_eq!(k.to_string().parse::<SchedKind>(), Ok(k));
        }
        let err = "lblc".parse::<SchedKind>().unwrap_err();
        assert!(err.to_string().contains("\"lblc\""), "{err}");
    }

    #[test]
    fn rr_order_and_wrap() {
        let reals = pool(&[1, 1, 1]);
        let mut s = Scheduler::new(SchedKind::Rr, &reals);
        assert_eq!(picks(&mut s, &reals, 7), [0, 1, 2, 0, 1, 2, 0].map(Some));
    }

    #[test]
    fn rr_skips_unusable_and_resumes() {
        let mut reals = pool(&[1, 0, 1, 1]);
        reals[2].overloaded = true;
        let mut s = Scheduler::new(SchedKind::Rr, &reals);
        assert_eq!(picks(&mut s, &reals, 4), [0, 3, 0, 3].map(Some));
        reals[2].overloaded = false;
        assert_eq!(picks(&mut s, &reals, 3), [0, 2, 3].map(Some));
    }

    #[test]
    fn rr_all_unusable() {
        let mut reals = pool(&[0, 1]);
        reals[1].overloaded = true;
        let mut s = Scheduler::new(SchedKind::Rr, &reals);
        assert_eq!(s.pick(&reals, C, 0), None);
        assert_eq!(Scheduler::new(SchedKind::Rr, &[]).pick(&[], C, 0), None);
        for k in SchedKind::ALL {
            assert_eq!(Scheduler::new(k, &reals).pick(&reals, C, 0), None, "{k}");
            assert_eq!(Scheduler::new(k, &[]).pick(&[], C, 0), None, "{k}");
        }
    }

    #[test]
    fn lc_follows_overhead_and_ties_to_first() {
        let mut reals = pool(&[1, 1, 1]);
        let mut s = Scheduler::new(SchedKind::Lc, &reals);
        assert_eq!(s.pick(&reals, C, 0), Some(0));
        reals[0].active = 1;
        assert_eq!(s.pick(&reals, C, 0), Some(1));
        reals[1].active = 1;
        reals[2].inactive = 255; // 255 < 256: one active costs more than 255 inactive
        assert_eq!(s.pick(&reals, C, 0), Some(2));
        reals[2].inactive = 256;
        assert_eq!(s.pick(&reals, C, 0), Some(0), "tie goes to the first");
        // lc ignores weight magnitude but not weight 0 or overload.
        reals[0].weight = 0;
        reals[1].overloaded = true;
        assert_eq!(s.pick(&reals, C, 0), Some(2));
    }

    #[test]
    fn wlc_respects_weights() {
        let mut reals = pool(&[1, 3]);
        let mut s = Scheduler::new(SchedKind::Wlc, &reals);
        assert_eq!(s.pick(&reals, C, 0), Some(0), "0/1 vs 0/3 tie: first");
        // Simulate connections landing where wlc says: the 3x real should get ~3x the actives.
        for _ in 0..400 {
            let i = s.pick(&reals, C, 0).unwrap();
            reals[i].active += 1;
        }
        assert_eq!((reals[0].active, reals[1].active), (100, 300));
        reals[1].active = 301;
        assert_eq!(s.pick(&reals, C, 0), Some(0), "100/1 < 301/3");
        reals[1].active = 300;
        assert_eq!(s.pick(&reals, C, 0), Some(0), "exact tie goes to the first");
        reals[1].active = 299;
        assert_eq!(s.pick(&reals, C, 0), Some(1));
        reals[1].overloaded = true;
        assert_eq!(s.pick(&reals, C, 0), Some(0));
    }

    #[test]
    fn wlc_no_overflow_with_huge_counters() {
        let mut reals = pool(&[u32::MAX, u32::MAX - 1]);
        reals[0].active = u32::MAX;
        reals[1].active = u32::MAX - 1;
        let mut s = Scheduler::new(SchedKind::Wlc, &reals);
        assert_eq!(s.pick(&reals, C, 0), Some(0), "256 per weight each: tie");
        reals[1].active = u32::MAX - 2;
        assert_eq!(s.pick(&reals, C, 0), Some(1), "just under 256 per weight");
    }

    #[test]
    fn overload_hysteresis() {
        let mut o = false;
        update_overload(&mut o, 1_000_000, 0, 0);
        assert!(!o, "upper 0 is no limit");
        update_overload(&mut o, 99, 100, 0);
        assert!(!o);
        update_overload(&mut o, 100, 100, 0);
        assert!(o, "reaching upper overloads");
        update_overload(&mut o, 80, 100, 0);
        assert!(o, "stays overloaded above 3/4 of upper");
        update_overload(&mut o, 75, 100, 0);
        assert!(o, "75*4 is not < 300");
        update_overload(&mut o, 74, 100, 0);
        assert!(!o);
        update_overload(&mut o, 90, 100, 0);
        assert!(!o, "below upper and not overloaded stays clear");

        let mut o = false;
        update_overload(&mut o, 100, 100, 50);
        assert!(o);
        update_overload(&mut o, 50, 100, 50);
        assert!(o, "lower is strict");
        update_overload(&mut o, 49, 100, 50);
        assert!(!o);

        let mut o = true;
        update_overload(&mut o, 10, 0, 0);
        assert!(!o, "no thresholds clears a stale flag");
        let mut o = false;
        update_overload(&mut o, u32::MAX, u32::MAX, 0);
        assert!(o);
        update_overload(&mut o, u32::MAX - 1, u32::MAX, 0);
        assert!(o, "no overflow in the 3/4 test");
    }
}
