//! Between the dataplane's [`SyncOp`]s and the wire's [`Entry`]s.
//!
//! A connection is an entry with the forwarding mode in the flags' low bits (FULLNAT as DPVS
//! numbers it, 5), `IP_VS_CONN_F_INACTIVE` unless ESTABLISHED, the LVS TCP state, the time left in
//! seconds (rounded up, as a backup must not expire it first), and:
//! - FULLNAT: the rvs conn option with the local address and port;
//! - SYN-proxied: `IPVS_OPT_SEQ_DATA` with `out_seq.delta = previous_delta = shift` (every server
//!   sequence number is shifted: `init_seq` 0) and `IP_VS_CONN_F_OUT_SEQ`, plus the rvs synproxy
//!   option with the timestamp shift;
//! - PROXY protocol: the rvs proxy option;
//! - a release: the rvs release option.
//!
//! A template is an entry with `IP_VS_CONN_F_TEMPLATE`, cport 0, the service's vport and the real
//! server's address and port, as IPVS sends its persistence templates.
use std::net::{IpAddr, Ipv4Addr};

use rvs_dataplane::conn::sync::{SyncConn, SyncOp, SyncTemplate};
use rvs_dataplane::conn::TcpState;
use rvs_dataplane::flow::{FlowKey, Millis, Proto};
use rvs_dataplane::xmit::Xlat;

use super::wire::{flags, Entry, RvsConn, RvsProxy, RvsSynproxy, Seq, SeqData};

/// Why an entry cannot be installed here (the message's other entries still are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("IPv6 connections are not supported")]
    Ipv6,
    #[error("protocol {0} is neither TCP nor UDP")]
    Protocol(u8),
    #[error("TCP state {0} is not an LVS state")]
    State(u16),
    #[error("forwarding method {0} is not one rvs has")]
    Method(u32),
    #[error("a FULLNAT connection without its local address option")]
    NoLocalAddr,
    #[error("fwmark services are not supported")]
    Fwmark,
}

fn method(x: Xlat) -> u32 {
    match x {
        Xlat::FullNat => flags::FULLNAT,
        Xlat::Nat => flags::MASQ,
        Xlat::Dr => flags::DROUTE,
        Xlat::Tun => flags::TUNNEL,
    }
}

fn secs(ms: Millis) -> u32 {
    ms.div_ceil(1000).min(u32::MAX as u64) as u32
}

fn conn_entry(c: &SyncConn, release: Option<u8>) -> Entry {
    let mut f = method(c.xlat);
    if !c.state.is_active() {
        f |= flags::INACTIVE;
    }
    if c.xlat == Xlat::Dr || c.xlat == Xlat::Tun {
        f |= flags::NOOUTPUT;
    }
    let seq = c.synproxy.map(|(delta, _)| {
        f |= flags::OUT_SEQ;
        SeqData { in_seq: Seq::default(), out_seq: Seq { init_seq: 0, delta, previous_delta: delta } }
    });
    Entry {
        protocol: c.client.proto.number(),
        flags: f,
        state: c.state as u16,
        cport: c.client.sport,
        vport: c.client.dport,
        dport: c.rport,
        fwmark: 0,
        timeout: secs(c.timeout_ms),
        caddr: IpAddr::V4(c.client.src),
        vaddr: IpAddr::V4(c.client.dst),
        daddr: IpAddr::V4(c.rs),
        seq,
        conn: (c.xlat == Xlat::FullNat || c.toa_done).then_some(RvsConn {
            laddr: IpAddr::V4(if c.xlat == Xlat::FullNat { c.lip } else { Ipv4Addr::UNSPECIFIED }),
            lport: if c.xlat == Xlat::FullNat { c.lport } else { 0 },
            toa_done: c.toa_done,
        }),
        synproxy: c.synproxy.map(|(_, ts)| RvsSynproxy { ts_delta: ts }),
        proxy: c.pp.map(|(len, start, acked)| RvsProxy { len, acked, start }),
        release,
        pe: false,
    }
}

/// The entry for `op`.
pub fn to_entry(op: &SyncOp) -> Entry {
    match op {
        SyncOp::Conn(c) => conn_entry(c, None),
        SyncOp::Release(c) => conn_entry(c, Some(1)),
        SyncOp::Template(t) => Entry {
            protocol: t.proto.number(),
            flags: flags::TEMPLATE,
            state: 0,
            cport: 0,
            vport: t.vport,
            dport: t.rport,
            fwmark: 0,
            timeout: secs(t.timeout_ms),
            caddr: IpAddr::V4(t.client),
            vaddr: IpAddr::V4(t.vip),
            daddr: IpAddr::V4(t.rs),
            seq: None,
            conn: None,
            synproxy: None,
            proxy: None,
            release: None,
            pe: false,
        },
    }
}

fn v4(a: IpAddr) -> Result<Ipv4Addr, RecordError> {
    match a {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(RecordError::Ipv6),
    }
}

/// The operation an entry asks for.
pub fn from_entry(e: &Entry) -> Result<SyncOp, RecordError> {
    let proto = match e.protocol {
        6 => Proto::Tcp,
        17 => Proto::Udp,
        p => return Err(RecordError::Protocol(p)),
    };
    if e.fwmark != 0 {
        return Err(RecordError::Fwmark);
    }
    let (caddr, vaddr, daddr) = (v4(e.caddr)?, v4(e.vaddr)?, v4(e.daddr)?);
    let timeout_ms = u64::from(e.timeout) * 1000;
    if e.flags & flags::TEMPLATE != 0 {
        return Ok(SyncOp::Template(SyncTemplate {
            proto,
            vip: vaddr,
            vport: e.vport,
            client: caddr,
            rs: daddr,
            rport: e.dport,
            timeout_ms,
        }));
    }
    let xlat = match e.flags & flags::FWD_MASK {
        flags::FULLNAT => Xlat::FullNat,
        flags::MASQ => Xlat::Nat,
        flags::DROUTE => Xlat::Dr,
        flags::TUNNEL => Xlat::Tun,
        m => return Err(RecordError::Method(m)),
    };
    let state = match proto {
        Proto::Udp => TcpState::None,
        Proto::Tcp => *TcpState::ALL.get(e.state as usize).ok_or(RecordError::State(e.state))?,
    };
    let client = FlowKey { proto, src: caddr, dst: vaddr, sport: e.cport, dport: e.vport };
    let (lip, lport) = match (xlat, e.conn) {
        (Xlat::FullNat, Some(c)) => (v4(c.laddr)?, c.lport),
        (Xlat::FullNat, None) => return Err(RecordError::NoLocalAddr),
        _ => (caddr, e.cport),
    };
    let synproxy = match (e.synproxy, e.seq) {
        (Some(s), Some(q)) => Some((q.out_seq.delta, s.ts_delta)),
        (Some(s), None) => Some((0, s.ts_delta)),
        // The kernel's seq data alone (a kernel master's NAT helper): nothing rvs shifts by.
        _ => None,
    };
    let c = SyncConn {
        client,
        lip,
        lport,
        rs: daddr,
        rport: e.dport,
        xlat,
        state,
        timeout_ms,
        synproxy,
        pp: e.proxy.map(|p| (p.len, p.start, p.acked)),
        toa_done: e.conn.is_some_and(|c| c.toa_done),
    };
    Ok(if e.release.is_some() { SyncOp::Release(c) } else { SyncOp::Conn(c) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::wire::{decode, Message, MessageBuf};

    fn conn() -> SyncConn {
        SyncConn {
            client: FlowKey {
                proto: Proto::Tcp,
                src: Ipv4Addr::new(198, 18, 0, 10),
                dst: Ipv4Addr::new(198, 18, 0, 100),
                sport: 40000,
                dport: 80,
            },
            lip: Ipv4Addr::new(198, 18, 1, 100),
            lport: 5001,
            rs: Ipv4Addr::new(198, 18, 1, 11),
            rport: 8080,
            xlat: Xlat::FullNat,
            state: TcpState::Established,
            timeout_ms: 900_000,
            synproxy: Some((0x1234_5678, Some(77))),
            pp: Some((28, 99, true)),
            toa_done: true,
        }
    }

    fn through_wire(ops: &[SyncOp]) -> Vec<SyncOp> {
        let mut m = MessageBuf::new(3, 1472);
        for op in ops {
            m.push(&to_entry(op)).unwrap();
        }
        let Message::Conns(_, es) = decode(m.bytes()).unwrap() else { panic!() };
        es.map(|e| from_entry(&e.unwrap()).unwrap()).collect()
    }

    #[test]
    fn ops_round_trip() {
        let udp = SyncConn {
            client: FlowKey { proto: Proto::Udp, ..conn().client },
            state: TcpState::None,
            synproxy: None,
            pp: None,
            toa_done: false,
            xlat: Xlat::Nat,
            lip: conn().client.src,
            lport: conn().client.sport,
            ..conn()
        };
        let t = SyncTemplate {
            proto: Proto::Tcp,
            vip: conn().client.dst,
            vport: 80,
            client: conn().client.src,
            rs: conn().rs,
            rport: 8080,
            timeout_ms: 300_000,
        };
        let ops = [SyncOp::Conn(conn()), SyncOp::Release(conn()), SyncOp::Conn(udp), SyncOp::Template(t)];
        assert_eq!(through_wire(&ops), ops);
    }

    #[test]
    fn timeouts_round_up_to_seconds() {
        let c = SyncConn { timeout_ms: 1, ..conn() };
        assert_eq!(to_entry(&SyncOp::Conn(c)).timeout, 1);
        let c = SyncConn { timeout_ms: 0, ..conn() };
        assert_eq!(to_entry(&SyncOp::Conn(c)).timeout, 0);
    }

    #[test]
    fn entry_flags_follow_kernel_meaning() {
        let e = to_entry(&SyncOp::Conn(conn()));
        assert_eq!(e.flags, flags::FULLNAT | flags::OUT_SEQ);
        assert_eq!(e.seq.unwrap().out_seq.delta, 0x1234_5678);
        let e = to_entry(&SyncOp::Conn(SyncConn { state: TcpState::SynRecv, synproxy: None, ..conn() }));
        assert_eq!(e.flags, flags::FULLNAT | flags::INACTIVE);
        assert_eq!(e.state, 3);
    }

    #[test]
    fn refuses_what_rvs_cannot_install() {
        let mut e = to_entry(&SyncOp::Conn(conn()));
        e.conn = None;
        assert_eq!(from_entry(&e), Err(RecordError::NoLocalAddr));
        let mut e = to_entry(&SyncOp::Conn(conn()));
        e.protocol = 132;
        assert_eq!(from_entry(&e), Err(RecordError::Protocol(132)));
        let mut e = to_entry(&SyncOp::Conn(conn()));
        e.state = 11;
        assert_eq!(from_entry(&e), Err(RecordError::State(11)));
        let mut e = to_entry(&SyncOp::Conn(conn()));
        e.flags = 1;
        assert_eq!(from_entry(&e), Err(RecordError::Method(1)));
        let mut e = to_entry(&SyncOp::Conn(conn()));
        e.caddr = "::1".parse().unwrap();
        assert_eq!(from_entry(&e), Err(RecordError::Ipv6));
    }
}
