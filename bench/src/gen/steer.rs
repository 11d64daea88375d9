//! Which queue a generated frame leaves on, emulating what a NIC does for the gateway's workers.
//!
//! - Client side: RSS-like, by a hash of the 4-tuple, so client flows spread over the workers.
//! - Server side, [`Steer::Hash`]: the same hash, as plain RSS would do; a reply lands on the
//!   worker that owns its connection only by chance (1/queues), the rest need the gateway's
//!   software hand-off.
//! - Server side, [`Steer::Owner`]: the queue of the worker that owns the destination local port
//!   (`rvs_dataplane::conn::owner`), as NIC flow rules on the port's low bits would: no hand-off.
//!
//! Invariant: the result is always `< queues`, and frames that are not IPv4 TCP/UDP go to queue 0.
use rvs_dataplane::conn::owner;

use super::Side;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    Hash,
    Owner,
}

impl std::str::FromStr for Steer {
    type Err = String;
    fn from_str(s: &str) -> Result<Steer, String> {
        match s {
            "hash" => Ok(Steer::Hash),
            "owner" => Ok(Steer::Owner),
            o => Err(format!("unknown steering \"{o}\" (hash or owner)")),
        }
    }
}

/// A well-mixed 32-bit hash of the IPv4 4-tuple (not Toeplitz: any good spread serves).
#[inline]
pub fn tuple_hash(src: u32, dst: u32, sport: u16, dport: u16) -> u32 {
    let mut x = (src as u64) << 32 | dst as u64;
    x ^= ((sport as u64) << 16 | dport as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (x ^ (x >> 33)) as u32
}

/// The queue for an Ethernet frame sent on `side`.
#[inline]
pub fn queue_for(side: Side, frame: &[u8], queues: u16, steer: Steer) -> u16 {
    if queues <= 1 || frame.len() < 14 + 20 + 4 || frame[12..14] != [0x08, 0x00] {
        return 0;
    }
    let ihl = (frame[14] & 0x0f) as usize * 4;
    let proto = frame[14 + 9];
    if ihl < 20 || frame.len() < 14 + ihl + 4 || (proto != 6 && proto != 17) {
        return 0;
    }
    let be32 = |o: usize| u32::from_be_bytes([frame[o], frame[o + 1], frame[o + 2], frame[o + 3]]);
    let be16 = |o: usize| u16::from_be_bytes([frame[o], frame[o + 1]]);
    let (src, dst) = (be32(26), be32(30));
    let (sport, dport) = (be16(14 + ihl), be16(14 + ihl + 2));
    match (side, steer) {
        (Side::Server, Steer::Owner) => owner(dport, queues),
        _ => (tuple_hash(src, dst, sport, dport) % queues as u32) as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_dataplane::wire::testkit::FrameBuilder;
    use rvs_dataplane::wire::EthernetAddress;

    fn udp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        FrameBuilder::new(mac, mac).udp(src.into(), sport, dst.into(), dport, &[], true)
    }

    #[test]
    fn owner_steering_follows_the_local_port_slices() {
        for queues in 1..=4u16 {
            for lport in [1025u16, 1026, 1027, 1028, 40_000, 65_535] {
                let f = udp_frame([198, 18, 1, 11], [198, 18, 1, 100], 80, lport);
                let q = queue_for(Side::Server, &f, queues, Steer::Owner);
                assert_eq!(q, owner(lport, queues));
                assert!(q < queues);
            }
        }
    }

    #[test]
    fn hash_steering_spreads_and_is_stable() {
        let mut per_queue = [0u32; 2];
        let mut off_owner = 0;
        for i in 0..10_000u32 {
            let lport = 1025 + (i % 60_000) as u16;
            let c = udp_frame([198, 19, (i >> 8) as u8, i as u8], [198, 18, 0, 100], 10_000, 80);
            let q = queue_for(Side::Client, &c, 2, Steer::Owner);
            assert_eq!(q, queue_for(Side::Client, &c, 2, Steer::Hash), "client side always hashes");
            per_queue[q as usize] += 1;
            let s = udp_frame([198, 18, 1, 11], [198, 18, 1, 100], 80, lport);
            let qs = queue_for(Side::Server, &s, 2, Steer::Hash);
            assert_eq!(qs, queue_for(Side::Server, &s, 2, Steer::Hash));
            if qs != owner(lport, 2) {
                off_owner += 1;
            }
        }
        assert!(per_queue.iter().all(|&n| (4_500..=5_500).contains(&n)), "{per_queue:?}");
        // Plain hashing puts about half of the replies on the wrong worker: the hand-off's load.
        assert!((4_500..=5_500).contains(&off_owner), "{off_owner}");
    }

    #[test]
    fn non_ip_goes_to_queue_zero() {
        let mut arp = udp_frame([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(queue_for(Side::Client, &arp, 4, Steer::Hash), 0);
        assert_eq!(queue_for(Side::Client, &[0u8; 10], 4, Steer::Hash), 0);
    }
}
