//! keepalived's quorum and sorry server, as pure functions of a service's state
//! (keepalived/check/ipwrapper.c, commit 9cbce3e2 of acassen/keepalived):
//!
//! - The live weight of a service is the sum of the weights of its real servers whose check says
//!   up (`weigh_live_realservers`; a server taken out, inhibited or not, counts nothing).
//! - A service starts with quorum when its live weight is at least `quorum + hysteresis`
//!   (`set_quorum_states`, then `update_quorum_state(vs, init = true)` from `init_service_vs`).
//! - With quorum, it loses it when the live weight is 0 or below `quorum - hysteresis`; without, it
//!   regains it at `quorum + hysteresis` or more (`update_quorum_state`).
//! - Losing quorum with a sorry server: the live real servers leave the pool
//!   (`perform_quorum_state(vs, false)`, whose `LVS_CMD_DEL_DEST` sets weight 0 instead under
//!   `inhibit_on_failure`: ipvswrapper.c `ipvs_cmd`) and the sorry server joins it at weight 1
//!   (`alloc_ssvr` in check_data.c sets its weight to 1). Regaining quorum removes the sorry
//!   server (weight 0 with `sorry_server_inhibit`) and puts the live real servers back.
//! - While the sorry server serves, real servers going up or down do not touch the pool
//!   (`perform_svr_state`: "Change only if we have quorum or no sorry server"); they only move the
//!   live weight.
//! - With `sorry_server_inhibit` the sorry server is in the pool from the start, at weight 0
//!   (`init_service_vs`).
//! - Without a sorry server, quorum changes nothing in the pool (keepalived then only runs the
//!   `quorum_up`/`quorum_down` scripts, which rvs does not run).
//!
//! [`pool`] is therefore a function of the configuration, the health verdicts and the one bit of
//! history [`update`] keeps: whether the service has quorum.
use rvs_dataplane::setup::RealSetup;

/// keepalived's weight of a sorry server (check_data.c `alloc_ssvr`: `effective_weight = 1`).
pub const SORRY_WEIGHT: u32 = 1;

/// Whether a service starts with quorum, its real servers all up with `live` weight.
pub fn initial(live: u64, quorum: u32, hysteresis: u32) -> bool {
    live >= u64::from(quorum) + u64::from(hysteresis)
}

/// Whether a service has quorum after its live weight became `live`, given whether it had it
/// (`had`): `update_quorum_state`'s thresholds.
pub fn update(had: bool, live: u64, quorum: u32, hysteresis: u32) -> bool {
    let (q, h) = (u64::from(quorum), u64::from(hysteresis));
    if had {
        !(live == 0 || live < q.saturating_sub(h))
    } else {
        live >= q + h
    }
}

/// One configured real server of a service, as the dataplane would take it, and its verdict.
#[derive(Debug, Clone)]
pub struct Member {
    pub real: RealSetup,
    /// Its health check says down.
    pub down: bool,
}

/// A service's sorry server, as the dataplane would take it (its weight is ignored: it serves at
/// [`SORRY_WEIGHT`]), and its `sorry_server_inhibit`.
#[derive(Debug, Clone)]
pub struct Sorry {
    pub real: RealSetup,
    pub inhibit: bool,
}

/// The sum of the weights of the members that are up.
pub fn live_weight(members: &[Member]) -> u64 {
    members.iter().filter(|m| !m.down).map(|m| u64::from(m.real.weight)).sum()
}

/// The real servers the dataplane schedules over, in configuration order, the sorry server last.
/// `inhibit` is the service's `inhibit_on_failure`; `has_quorum` what [`update`] says.
///
/// A sorry server at the address of one of the real servers (keepalived's
/// `s_svr_duplicates_rs`) has that server's id: it is one entry, the sorry server's while it serves.
pub fn pool(members: Vec<Member>, inhibit: bool, sorry: Option<Sorry>, has_quorum: bool) -> Vec<RealSetup> {
    let serving = !has_quorum && sorry.is_some();
    let mut out: Vec<RealSetup> = Vec::with_capacity(members.len() + 1);
    for Member { mut real, down } in members {
        if down || serving {
            if !inhibit {
                continue;
            }
            real.weight = 0;
        }
        out.push(real);
    }
    if let Some(Sorry { mut real, inhibit: sorry_inhibit }) = sorry {
        let same = out.iter().position(|r| r.id == real.id && r.addr == real.addr && r.port == real.port);
        if serving {
            real.weight = SORRY_WEIGHT;
            match same {
                Some(i) => out[i] = real,
                None => out.push(real),
            }
        } else if sorry_inhibit && same.is_none() {
            real.weight = 0;
            out.push(real);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_dataplane::xmit::Xlat;
    use std::net::Ipv4Addr;

    fn rs(id: u32, last: u8, weight: u32) -> RealSetup {
        RealSetup {
            id,
            addr: Ipv4Addr::new(198, 18, 1, last).into(),
            port: 80,
            weight,
            u_threshold: 0,
            l_threshold: 0,
            xlat: Xlat::FullNat,
        }
    }

    /// (id, weight) of each pool entry.
    fn ids(p: &[RealSetup]) -> Vec<(u32, u32)> {
        p.iter().map(|r| (r.id, r.weight)).collect()
    }

    /// Three servers of weights 1, 2, 3 (live 6), quorum 4, hysteresis 1: lost below 3, back at 5.
    fn members(down: [bool; 3]) -> Vec<Member> {
        vec![
            Member { real: rs(1, 11, 1), down: down[0] },
            Member { real: rs(2, 12, 2), down: down[1] },
            Member { real: rs(3, 13, 3), down: down[2] },
        ]
    }

    fn sorry(inhibit: bool) -> Option<Sorry> {
        Some(Sorry { real: rs(9, 99, 7), inhibit })
    }

    #[test]
    fn quorum_thresholds_follow_update_quorum_state() {
        let (q, h) = (4, 1);
        assert!(initial(6, q, h));
        assert!(initial(5, q, h), "starts up at quorum + hysteresis");
        assert!(!initial(4, q, h), "quorum alone is not enough to start with it");
        // With quorum: kept down to quorum - hysteresis, lost below.
        assert!(update(true, 3, q, h));
        assert!(!update(true, 2, q, h));
        // Without: not back at quorum, back at quorum + hysteresis.
        assert!(!update(false, 4, q, h));
        assert!(update(false, 5, q, h));
        // No hysteresis: one threshold.
        assert!(!update(true, 3, 4, 0) && update(true, 4, 4, 0) && update(false, 4, 4, 0));
        // No live weight loses quorum whatever the thresholds (`!weight_sum`).
        assert!(!update(true, 0, 1, 0));
        assert!(update(false, 1, 1, 0));
    }

    /// Walks the servers down one by one and back up, the way health transitions come, and checks
    /// the pool at each step: the state machine of `update_quorum_state` / `perform_quorum_state`.
    #[test]
    fn quorum_lost_and_regained_with_hysteresis_swaps_in_the_sorry_server() {
        let (q, h) = (4, 1);
        let step = |had: bool, down: [bool; 3]| {
            let m = members(down);
            let up = update(had, live_weight(&m), q, h);
            (up, ids(&pool(m, false, sorry(false), up)))
        };
        let up = initial(live_weight(&members([false; 3])), q, h);
        assert!(up);
        assert_eq!(ids(&pool(members([false; 3]), false, sorry(false), up)), [(1, 1), (2, 2), (3, 3)]);
        // Server 1 down: live 5, kept; server 1 leaves the pool (keepalived's default).
        let (u, p) = step(up, [true, false, false]);
        assert!(u);
        assert_eq!(p, [(2, 2), (3, 3)]);
        // Server 3 down too: live 2 < 4 - 1, quorum lost: the live server 2 leaves, sorry at weight 1.
        let (u, p) = step(u, [true, false, true]);
        assert!(!u);
        assert_eq!(p, [(9, SORRY_WEIGHT)]);
        // Server 3 back: live 5 >= 4 + 1: quorum back, sorry out, live servers back.
        let (u, p) = step(u, [true, false, false]);
        assert!(u);
        assert_eq!(p, [(2, 2), (3, 3)]);
        // Lose it again, then server 1 back: live 3, at quorum but below quorum + hysteresis: the
        // sorry server keeps serving and server 1 does not join the pool.
        let (u, _) = step(u, [true, false, true]);
        assert!(!u);
        let (u, p) = step(u, [false, false, true]);
        assert!(!u, "hysteresis: 3 is not 4 + 1");
        assert_eq!(p, [(9, SORRY_WEIGHT)]);
        // Everything back: live 6.
        let (u, p) = step(u, [false; 3]);
        assert!(u);
        assert_eq!(p, [(1, 1), (2, 2), (3, 3)]);
    }

    #[test]
    fn quorum_inhibit_rules() {
        // inhibit_on_failure: the real servers stay at weight 0 while the sorry server serves.
        assert_eq!(
            ids(&pool(members([true, false, true]), true, sorry(false), false)),
            [(1, 0), (2, 0), (3, 0), (9, SORRY_WEIGHT)]
        );
        // ... and a down one stays at 0 once quorum is back.
        assert_eq!(
            ids(&pool(members([true, false, false]), true, sorry(false), true)),
            [(1, 0), (2, 2), (3, 3)]
        );
        // sorry_server_inhibit: in the pool at weight 0 while not serving, at 1 while serving.
        assert_eq!(
            ids(&pool(members([false; 3]), false, sorry(true), true)),
            [(1, 1), (2, 2), (3, 3), (9, 0)]
        );
        assert_eq!(ids(&pool(members([true; 3]), false, sorry(true), false)), [(9, SORRY_WEIGHT)]);
        // Without a sorry server, losing quorum changes nothing (keepalived only runs scripts).
        assert_eq!(ids(&pool(members([true, false, true]), false, None, false)), [(2, 2)]);
        // A sorry server at a real server's address is that one entry.
        let dup = Some(Sorry { real: rs(2, 12, 2), inhibit: true });
        assert_eq!(ids(&pool(members([true, false, true]), false, dup.clone(), false)), [(2, SORRY_WEIGHT)]);
        assert_eq!(ids(&pool(members([false; 3]), false, dup, true)), [(1, 1), (2, 2), (3, 3)]);
    }
}
