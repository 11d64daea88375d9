//! TCP connection states and timeouts, as LVS tracks them (`net/netfilter/ipvs/ip_vs_proto_tcp.c`).
//!
//! Invariants:
//! - The transition table is LVS's `tcp_states` (normal, non-`secure_tcp` mode): INPUT and OUTPUT
//!   for FULLNAT and NAT, where the gateway sees both directions, and INPUT-ONLY for the client's
//!   segments of DR and TUN connections, whose replies bypass the gateway (LVS's
//!   `IP_VS_CONN_F_NOOUTPUT`): there a client FIN from ESTABLISHED goes to FIN_WAIT, not
//!   CLOSE_WAIT, and a RST in SYN_ACK closes.
//! - The event is chosen from the flag byte with LVS's priority rst > syn > fin > ack
//!   (`tcp_state_idx`). A segment with none of those flags moves the connection to CLOSE, exactly as
//!   `set_tcp_state` does (its `new_state` starts as CLOSE and the lookup is skipped).
//! - Only ESTABLISHED counts as "active" for per-real counters; every other state is "inactive".
//!   New connections start inactive, as LVS's destinations hand `IP_VS_CONN_F_INACTIVE` to every
//!   new connection.
use crate::flow::Millis;

/// TCP flag bits in the raw flag byte (byte 13 of the TCP header).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// LVS's TCP connection states (`IP_VS_TCP_S_*`), in LVS's order so the table reads like the C one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait = 4,
    TimeWait = 5,
    Close = 6,
    CloseWait = 7,
    LastAck = 8,
    Listen = 9,
    SynAck = 10,
}

/// Number of TCP states.
pub const TCP_STATES: usize = 11;

impl TcpState {
    pub const ALL: [TcpState; TCP_STATES] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// LVS counts a connection in a real's `activeconns` only while ESTABLISHED; everything else is
    /// `inactconns`.
    pub const fn is_active(self) -> bool {
        matches!(self, TcpState::Established)
    }

    /// The name LVS prints (`ipvsadm -lc`).
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    pub(crate) const fn from_u8(v: u8) -> TcpState {
        if (v as usize) < TCP_STATES {
            TcpState::ALL[v as usize]
        } else {
            TcpState::Close
        }
    }
}

/// The direction a packet travelled, relative to the connection it belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Dir {
    /// From the client to the VIP (LVS "input").
    Original,
    /// From the real server to the local address (LVS "output").
    Reply,
}

/// Event index, LVS's `tcp_state_idx`: rst > syn > fin > ack; `None` when none is set.
pub const fn tcp_event(flags: u8) -> Option<usize> {
    if flags & tcp_flags::RST != 0 {
        Some(3)
    } else if flags & tcp_flags::SYN != 0 {
        Some(0)
    } else if flags & tcp_flags::FIN != 0 {
        Some(1)
    } else if flags & tcp_flags::ACK != 0 {
        Some(2)
    } else {
        None
    }
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// `TABLE[half][event][state]`, transcribed from LVS's `tcp_states` (INPUT = from client,
/// OUTPUT = from real server, INPUT-ONLY = from client when replies bypass the director).
/// Columns: NO ES SS SR FW TW CL CW LA LI SA.
#[rustfmt::skip]
const TABLE: [[[TcpState; TCP_STATES]; 4]; 3] = [
    // INPUT
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        /* ack */ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT
    [
        /* syn */ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /* ack */ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// The LVS transition for one segment of a connection whose replies pass the gateway.
pub const fn next_state(state: TcpState, dir: Dir, flags: u8) -> TcpState {
    next_state_in(state, dir, flags, false)
}

/// The LVS transition for one segment; `input_only` for a connection whose replies bypass the
/// gateway (DR, TUN), whose client segments then take the INPUT-ONLY half.
pub const fn next_state_in(state: TcpState, dir: Dir, flags: u8, input_only: bool) -> TcpState {
    let d = match (dir, input_only) {
        (Dir::Original, false) => 0,
        (Dir::Reply, _) => 1,
        (Dir::Original, true) => 2,
    };
    match tcp_event(flags) {
        Some(ev) => TABLE[d][ev][state as usize],
        None => TcpState::Close,
    }
}

/// Result of [`super::ConnTable::update_tcp`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StateChange {
    pub old: TcpState,
    pub new: TcpState,
}

impl StateChange {
    pub const fn changed(&self) -> bool {
        self.old as u8 != self.new as u8
    }
    /// The caller moves one connection from the real's inactive to its active count.
    pub const fn became_active(&self) -> bool {
        !self.old.is_active() && self.new.is_active()
    }
    /// The caller moves one connection from the real's active to its inactive count.
    pub const fn became_inactive(&self) -> bool {
        self.old.is_active() && !self.new.is_active()
    }
}

/// Idle timeouts in milliseconds. `Default` gives LVS's `tcp_timeouts` / `udp_timeouts`.
///
/// Each successful state update or `touch` re-arms the connection to `now + timeout(state)`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Timeouts {
    /// NONE: created but no segment seen yet (LVS 2 s).
    pub none: Millis,
    /// ESTABLISHED (LVS 900 s).
    pub established: Millis,
    /// SYN_SENT: real server sent SYN (LVS 120 s).
    pub syn_sent: Millis,
    /// SYN_RECV: client SYN seen, handshake incomplete (LVS 60 s).
    pub syn_recv: Millis,
    /// FIN_WAIT: real server closed first (LVS 120 s).
    pub fin_wait: Millis,
    /// TIME_WAIT (LVS 120 s).
    pub time_wait: Millis,
    /// CLOSE: RST seen or flagless segment (LVS 10 s).
    pub close: Millis,
    /// CLOSE_WAIT: client closed first (LVS 60 s).
    pub close_wait: Millis,
    /// LAST_ACK (LVS 30 s).
    pub last_ack: Millis,
    /// LISTEN (LVS 120 s).
    pub listen: Millis,
    /// SYNACK: only reachable in LVS's secure_tcp table; kept for completeness (LVS 120 s).
    pub synack: Millis,
    /// Any UDP flow (LVS `IP_VS_UDP_S_NORMAL`, 300 s).
    pub udp: Millis,
}

impl Default for Timeouts {
    fn default() -> Self {
        const S: Millis = 1000;
        Timeouts {
            none: 2 * S,
            established: 900 * S,
            syn_sent: 120 * S,
            syn_recv: 60 * S,
            fin_wait: 120 * S,
            time_wait: 120 * S,
            close: 10 * S,
            close_wait: 60 * S,
            last_ack: 30 * S,
            listen: 120 * S,
            synack: 120 * S,
            udp: 300 * S,
        }
    }
}

impl Timeouts {
    pub const fn tcp(&self, s: TcpState) -> Millis {
        match s {
            TcpState::None => self.none,
            TcpState::Established => self.established,
            TcpState::SynSent => self.syn_sent,
            TcpState::SynRecv => self.syn_recv,
            TcpState::FinWait => self.fin_wait,
            TcpState::TimeWait => self.time_wait,
            TcpState::Close => self.close,
            TcpState::CloseWait => self.close_wait,
            TcpState::LastAck => self.last_ack,
            TcpState::Listen => self.listen,
            TcpState::SynAck => self.synack,
        }
    }

    /// The longest timeout, to check it fits the timer wheel's range.
    pub fn max(&self) -> Millis {
        TcpState::ALL.iter().map(|&s| self.tcp(s)).fold(self.udp, Millis::max)
    }
}

#[cfg(test)]
mod tests {
    use super::tcp_flags::*;
    use super::*;

    fn run(mut s: TcpState, steps: &[(Dir, u8, TcpState)]) -> TcpState {
        for &(dir, flags, want) in steps {
            let n = next_state(s, dir, flags);
            assert_eq!(n, want, "{s:?} --{dir:?} {flags:#04x}--> {n:?}, want {want:?}");
            s = n;
        }
        s
    }

    /// DR and TUN: only the client's segments pass, through LVS's INPUT-ONLY half.
    #[test]
    fn input_only_follows_the_client_alone() {
        let mut s = TcpState::None;
        for (flags, want) in [
            (SYN, TcpState::SynRecv),
            (ACK, TcpState::Established),
            (ACK | PSH, TcpState::Established),
            // INPUT says CLOSE_WAIT here (the server's FIN would follow through the gateway).
            (FIN | ACK, TcpState::FinWait),
            (ACK, TcpState::FinWait),
            (FIN | ACK, TcpState::FinWait),
            (RST, TcpState::Close),
        ] {
            let n = next_state_in(s, Dir::Original, flags, true);
            assert_eq!(n, want, "{s:?} --{flags:#04x}--> {n:?}, want {want:?}");
            s = n;
        }
        // Where the halves differ: ESTABLISHED + FIN, FIN_WAIT + FIN, SYN_ACK + RST.
        assert_eq!(next_state_in(TcpState::Established, Dir::Original, FIN, false), TcpState::CloseWait);
        assert_eq!(next_state_in(TcpState::FinWait, Dir::Original, FIN, true), TcpState::FinWait);
        assert_eq!(next_state_in(TcpState::FinWait, Dir::Original, FIN, false), TcpState::TimeWait);
        assert_eq!(next_state_in(TcpState::SynAck, Dir::Original, RST, true), TcpState::Close);
        assert_eq!(next_state_in(TcpState::SynAck, Dir::Original, RST, false), TcpState::SynRecv);
        // A reply seen anyway takes the OUTPUT half.
        assert_eq!(next_state_in(TcpState::SynRecv, Dir::Reply, SYN | ACK, true), TcpState::SynRecv);
    }

    #[test]
    fn client_closes_first() {
        use Dir::*;
        run(
            TcpState::None,
            &[
                (Original, SYN, TcpState::SynRecv),
                (Reply, SYN | ACK, TcpState::SynRecv),
                (Original, ACK, TcpState::Established),
                (Original, ACK | PSH, TcpState::Established),
                (Reply, ACK, TcpState::Established),
                (Original, FIN | ACK, TcpState::CloseWait),
                (Reply, ACK, TcpState::CloseWait),
                (Reply, FIN | ACK, TcpState::TimeWait),
                (Original, ACK, TcpState::TimeWait),
            ],
        );
    }

    #[test]
    fn server_closes_first() {
        use Dir::*;
        run(
            TcpState::None,
            &[
                (Original, SYN, TcpState::SynRecv),
                (Reply, SYN | ACK, TcpState::SynRecv),
                (Original, ACK, TcpState::Established),
                (Reply, FIN | ACK, TcpState::FinWait),
                (Original, ACK, TcpState::FinWait),
                (Original, FIN | ACK, TcpState::TimeWait),
                (Reply, ACK, TcpState::TimeWait),
            ],
        );
    }

    #[test]
    fn rst_and_priority() {
        use Dir::*;
        // RST wins over every other flag.
        assert_eq!(next_state(TcpState::Established, Original, RST | SYN | FIN | ACK), TcpState::Close);
        assert_eq!(next_state(TcpState::Established, Reply, RST | ACK), TcpState::Close);
        // LVS quirks kept on purpose: RST in SYN_RECV stays SYN_RECV, from the RS in TIME_WAIT stays.
        assert_eq!(next_state(TcpState::SynRecv, Original, RST), TcpState::SynRecv);
        assert_eq!(next_state(TcpState::SynRecv, Reply, RST), TcpState::Close);
        assert_eq!(next_state(TcpState::TimeWait, Reply, RST), TcpState::TimeWait);
        // SYN beats FIN.
        assert_eq!(next_state(TcpState::None, Original, SYN | FIN), TcpState::SynRecv);
        // A bare ACK for an unknown conn closes it (current kernels; old ones said ESTABLISHED).
        assert_eq!(next_state(TcpState::None, Original, ACK), TcpState::Close);
        // No rst/syn/fin/ack: CLOSE, as set_tcp_state's default.
        assert_eq!(next_state(TcpState::Established, Original, PSH), TcpState::Close);
        assert_eq!(next_state(TcpState::Established, Reply, 0), TcpState::Close);
    }

    #[test]
    fn activity() {
        for s in TcpState::ALL {
            assert_eq!(s.is_active(), s == TcpState::Established);
            assert_eq!(TcpState::from_u8(s as u8), s);
        }
        let c = StateChange { old: TcpState::SynRecv, new: TcpState::Established };
        assert!(c.became_active() && !c.became_inactive() && c.changed());
        let c = StateChange { old: TcpState::Established, new: TcpState::CloseWait };
        assert!(!c.became_active() && c.became_inactive());
    }

    #[test]
    fn default_timeouts_are_lvs() {
        let t = Timeouts::default();
        let want: [(TcpState, Millis); TCP_STATES] = [
            (TcpState::None, 2_000),
            (TcpState::Established, 900_000),
            (TcpState::SynSent, 120_000),
            (TcpState::SynRecv, 60_000),
            (TcpState::FinWait, 120_000),
            (TcpState::TimeWait, 120_000),
            (TcpState::Close, 10_000),
            (TcpState::CloseWait, 60_000),
            (TcpState::LastAck, 30_000),
            (TcpState::Listen, 120_000),
            (TcpState::SynAck, 120_000),
        ];
        for (s, ms) in want {
            assert_eq!(t.tcp(s), ms, "{}", s.name());
        }
        assert_eq!(t.udp, 300_000);
        assert_eq!(t.max(), 900_000);
    }
}
