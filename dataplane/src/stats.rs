//! Per-worker counters: every drop reason is a [`DropReason`] variant, every other event a
//! [`Event`] variant, each with its own counter.
//!
//! Invariant: a [`Stats`] block belongs to one worker, which is its only writer. Writes are a relaxed
//! load plus a relaxed store (no locked read-modify-write, so as cheap as a plain add), and the control
//! thread reads them relaxed at any time. Blocks are indexed by worker, never global.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counter_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            pub const COUNT: usize = Self::ALL.len();
            /// The counter's name in stats output.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
        }
    };
}

counter_enum! {
    /// Why a packet was dropped.
    DropReason {
        /// Shorter than an Ethernet header.
        EthTruncated => "eth_truncated",
        /// An EtherType the gateway does not handle (IPv6, LLDP, ...).
        EtherType => "ethertype",
        /// Frame for another MAC address.
        NotOurMac => "not_our_mac",
        /// VLAN-tagged frame (no VLAN is configured).
        Vlan => "vlan",
        ArpMalformed => "arp_malformed",
        /// ARP request for an address the gateway does not own.
        ArpNotOurs => "arp_not_ours",
        /// ARP reply nobody asked for, or claiming one of our own addresses.
        ArpUnsolicited => "arp_unsolicited",
        Ipv4Truncated => "ipv4_truncated",
        Ipv4BadHeader => "ipv4_bad_header",
        Ipv4BadChecksum => "ipv4_bad_checksum",
        Ipv4BadSource => "ipv4_bad_source",
        Ipv4Land => "ipv4_land",
        Ipv4Fragment => "ipv4_fragment",
        TtlExceeded => "ttl_exceeded",
        /// IPv4 to an address the gateway neither owns nor balances.
        NotForUs => "not_for_us",
        /// An IP protocol the address does not serve.
        Protocol => "protocol",
        IcmpMalformed => "icmp_malformed",
        /// An ICMP type other than echo request sent to one of our addresses.
        IcmpType => "icmp_type",
        /// An ICMP error quoting a connection we do not track.
        IcmpUnknownConn => "icmp_unknown_conn",
        TcpMalformed => "tcp_malformed",
        TcpBadChecksum => "tcp_bad_checksum",
        TcpBadFlags => "tcp_bad_flags",
        /// A SYN whose options have a zero, one-byte or overrunning length.
        TcpBadOption => "tcp_bad_option",
        UdpMalformed => "udp_malformed",
        UdpBadChecksum => "udp_bad_checksum",
        /// SYN-proxy: the ACK's cookie did not verify (forged, wrong tuple, or a rotated-out secret).
        SynproxyBadCookie => "synproxy_bad_cookie",
        /// SYN-proxy: the ACK's cookie was older than its age limit.
        SynproxyCookieTooOld => "synproxy_cookie_too_old",
        /// SYN-proxy: the ACK echoed a timestamp we could not have sent.
        SynproxyBadTimestamp => "synproxy_bad_timestamp",
        /// SYN-proxy: the per-worker bound on half-open proxied connections was reached.
        SynproxyHalfOpenFull => "synproxy_half_open_full",
        /// SYN-proxy: more client packets than may be held while the real server answers.
        SynproxyHeldFull => "synproxy_held_full",
        /// SYN-proxy: repeated identical ACKs while half-open (ack-storm guard).
        SynproxyAckStorm => "synproxy_ack_storm",
        /// SYN-proxy: held packets of a connection the real server refused or never answered.
        SynproxyAborted => "synproxy_aborted",
        /// SYN-proxy: a segment that could not be sequence-shifted (malformed options).
        SynproxyBadSegment => "synproxy_bad_segment",
        /// A new UDP flow while the gateway drains (new TCP connections are refused with a RST).
        Draining => "draining",
        /// TCP/UDP to one of our addresses and a port with no virtual service.
        NoService => "no_service",
        /// TCP non-SYN matching no connection.
        TcpNoConn => "tcp_no_conn",
        /// Packet to a local address (LIP) that matches no connection.
        LipNoConn => "lip_no_conn",
        /// A packet from a NAT real server's address and port that matches no connection: never
        /// sent on as if from the VIP.
        NatNoConn => "nat_no_conn",
        /// The service has no usable real server.
        NoRealServer => "no_real_server",
        /// Connection table at capacity.
        ConnTableFull => "conn_table_full",
        /// No free local port on any of the service's local addresses.
        LportExhausted => "lport_exhausted",
        /// A FULLNAT service with no local address yet (DPVS's set-up order adds them last): new
        /// connections wait for `--add-laddr`.
        NoLocalAddr => "no_laddr",
        /// A new connection's tuple was already live (cannot happen unless tables disagree).
        ConnCollision => "conn_collision",
        /// No route to the destination.
        NoRoute => "no_route",
        /// The neighbour's queue of packets awaiting ARP resolution is full.
        NeighQueueFull => "neigh_queue_full",
        /// No free slot in the neighbour table for a new next hop.
        NeighTableFull => "neigh_table_full",
        /// The neighbour never answered ARP; its queued packets were dropped.
        NeighUnresolved => "neigh_unresolved",
        /// A packet larger than the outgoing MTU that could be neither answered with
        /// fragmentation-needed nor fragmented (IP options, no buffer), or a TUN packet without DF
        /// too big for the tunnel (see `crate::mtu`).
        MtuExceeded => "mtu_exceeded",
        /// A first fragment without the whole transport header (RFC 1858's tiny fragment).
        FragTiny => "frag_tiny",
        /// A TCP fragment at offset 8: it would overlap and could rewrite the header (RFC 1858).
        FragOverlap => "frag_overlap",
        /// The fragment table is at capacity (`conn.frag.max_datagrams` per worker).
        FragTableFull => "frag_table_full",
        /// One source has `conn.frag.max_per_source` datagrams in the table already.
        FragSourceLimit => "frag_source_limit",
        /// A datagram already has as many fragments waiting for its first as may wait.
        FragHeldFull => "frag_held_full",
        /// A fragment whose datagram has no connection (none found, none could be created).
        FragNoFlow => "frag_no_flow",
        /// Fragments that waited for a first fragment that never came.
        FragTimeout => "frag_timeout",
        /// No headroom in the buffer for an encapsulation header.
        NoHeadroom => "no_headroom",
        /// Chained (multi-segment) buffer that could not be linearised.
        Chained => "chained",
        /// The transmit queue refused the packet.
        TxFull => "tx_full",
        /// More output in one burst than the outbox holds.
        OutboxFull => "outbox_full",
        /// The ring to the worker that owns the packet was full (counted by the sender, which
        /// had already counted it as handed off, like `tx_full` after `tx_packets`).
        HandoffFull => "handoff_full",
        /// A frame arrived from another worker with a tag this build does not know.
        HandoffBadTag => "handoff_bad_tag",
        Ipv6Truncated => "ipv6_truncated",
        /// Version field not 6.
        Ipv6BadVersion => "ipv6_bad_version",
        /// Payload length 0 (jumbograms are not handled).
        Ipv6ZeroPayload => "ipv6_zero_payload",
        /// Payload length past the end of the frame.
        Ipv6PayloadOverrun => "ipv6_payload_overrun",
        /// An extension header running past the payload.
        Ipv6ExtOverrun => "ipv6_ext_overrun",
        /// An extension-header chain that repeats a header, misplaces hop-by-hop or is too long.
        Ipv6ExtLoop => "ipv6_ext_loop",
        /// From an unspecified, multicast or loopback address, or LAND (source = destination).
        Ipv6BadSource => "ipv6_bad_source",
        /// IPv6 fragments (not forwarded: IPv6 reassembly is the end host's).
        Ipv6Fragment => "ipv6_fragment",
        /// IPv6 to an address the gateway neither owns nor balances.
        Ipv6NotForUs => "ipv6_not_for_us",
        Icmpv6Malformed => "icmpv6_malformed",
        Icmpv6BadChecksum => "icmpv6_bad_checksum",
        /// An ICMPv6 type the gateway does not handle (router discovery, redirects, ...).
        Icmpv6Type => "icmpv6_type",
        /// NDP with a hop limit other than 255: sent from off-link.
        NdpHopLimit => "ndp_hop_limit",
        /// NDP with a non-zero code, too short, or a multicast target.
        NdpMalformed => "ndp_malformed",
        /// NDP with an option of length 0, overrunning, or a link-layer option of the wrong size.
        NdpBadOption => "ndp_bad_option",
        /// A neighbour solicitation for an address the gateway does not own, or from the
        /// unspecified address (duplicate address detection).
        NdpNotOurs => "ndp_not_ours",
        /// A neighbour advertisement nobody asked for, or claiming one of our own addresses.
        NdpUnsolicited => "ndp_unsolicited",
        /// NAT64: a packet the translation cannot carry (IPv4 options, an ICMP type without an
        /// IPv6 counterpart, a quoted packet too short).
        Nat64Untranslatable => "nat64_untranslatable",
    }
}

counter_enum! {
    /// Things that happened, for stats.
    Event {
        RxPackets => "rx_packets",
        RxBytes => "rx_bytes",
        TxPackets => "tx_packets",
        TxBytes => "tx_bytes",
        ArpRepliesSent => "arp_replies_sent",
        ArpRequestsSent => "arp_requests_sent",
        /// A frame the gateway builds itself (ARP request, SYN-proxy SYN or RST) could not be
        /// allocated: the packet buffer pool was empty.
        NoMbuf => "no_mbuf",
        ArpLearned => "arp_learned",
        /// An ARP reply that taught some worker a neighbour reached the end of its path (consumed).
        ArpConsumed => "arp_consumed",
        /// Frames passed to another worker: replies to a local port the other worker owns, ICMP
        /// errors about its connections, ARP replies every worker must see.
        HandoffOut => "handoff_out",
        /// Frames received from another worker.
        HandoffIn => "handoff_in",
        IcmpEchoReplies => "icmp_echo_replies",
        ConnsCreated => "conns_created",
        ConnsExpired => "conns_expired",
        /// A client SYN reused the tuple of a connection in TIME_WAIT/CLOSE: the old entry was
        /// dropped and the SYN scheduled afresh (LVS conn_reuse_mode).
        ConnsReused => "conns_reused",
        ToaInserted => "toa_inserted",
        /// No room for the TOA option in the segment that should carry it.
        ToaSkipped => "toa_skipped",
        /// PROXY protocol headers the gateway built and sent (first sends and resends).
        ProxyHeadersSent => "proxy_headers_sent",
        /// Of those, resends by the timer (the real server had not acknowledged the header).
        ProxyHeaderRetransmits => "proxy_header_retransmits",
        /// A PROXY protocol connection found the header timer list full: no timer resends its
        /// header (the client's retransmissions still do).
        ProxyTimerFull => "proxy_timer_full",
        /// A SYN to a TUN real server whose MSS was lowered to fit the encapsulation.
        MssClamped => "mss_clamped",
        /// A DF packet too big once encapsulated for a TUN real server, turned into the ICMP
        /// fragmentation-needed that answers it (naming the MTU minus the encapsulation).
        FragNeededSent => "frag_needed_sent",
        /// Fragments of TCP/UDP datagrams forwarded (first and later).
        FragmentsForwarded => "fragments_forwarded",
        /// Fragments the gateway built when it split a packet without DF for a smaller MTU (the
        /// first fragment is the original frame).
        FragmentsBuilt => "fragments_built",
        /// Packets encapsulated IPv4-in-IPv4 toward TUN real servers.
        TunEncapsulated => "tun_encapsulated",
        IcmpErrorsRelayed => "icmp_errors_relayed",
        /// Neighbour advertisements sent in answer to solicitations.
        NdpAdvertsSent => "ndp_adverts_sent",
        /// Neighbour solicitations the gateway built (built frames, like ARP requests).
        NdpSolicitsSent => "ndp_solicits_sent",
        NdpLearned => "ndp_learned",
        /// A neighbour advertisement that taught some worker a neighbour reached the end of its
        /// path (consumed).
        NdpConsumed => "ndp_consumed",
        /// ICMPv6 Packet Too Big sent for a forwarded packet larger than the way out (in place of
        /// the packet).
        PacketTooBigSent => "packet_too_big_sent",
        /// NAT64: packets translated between IPv6 and IPv4 (both directions, ICMP errors included).
        Nat64Translated => "nat64_translated",
        RstSent => "rst_sent",
        /// SYN-proxy: SYNs answered with a cookie SYN-ACK.
        SynproxySynAcks => "synproxy_synacks",
        /// SYN-proxy: ACKs whose cookie verified.
        SynproxyCookiesValid => "synproxy_cookies_valid",
        /// SYN-proxy: SYNs sent to real servers (first tries and retries).
        SynproxySynsSent => "synproxy_syns_sent",
        /// SYN-proxy: real-server SYN-ACKs that completed a proxied handshake (consumed).
        SynproxyHandshakes => "synproxy_handshakes",
        /// SYN-proxy: real servers that refused (RST) a proxied connection.
        SynproxyRsRefused => "synproxy_rs_refused",
        /// SYN-proxy: real servers that never answered the SYN retries.
        SynproxyRsTimeouts => "synproxy_rs_timeouts",
        /// SYN-proxy: RSTs the gateway built for clients (real server timed out).
        SynproxyRstsGenerated => "synproxy_rsts_generated",
        /// New connections refused (RST) while draining.
        RefusedDraining => "refused_draining",
        LportRetry => "lport_retry",
        PersistHits => "persist_hits",
        /// The persistence template table was full; the connection was made without a template.
        PersistFull => "persist_full",
        /// TSC cycles of the worker loop's busy polls: the iterations that received at least one
        /// frame (from a port or another worker), counted by rvsd's loop, not by the dataplane.
        /// Idle polls are left out, as in VPP's "clocks per packet" and testpmd's
        /// `--record-core-cycles`, so `busy_cycles / busy_packets` is the cost of a packet
        /// whatever the offered load.
        BusyCycles => "busy_cycles",
        /// Frames received (from ports and hand-off rings) in those busy polls.
        BusyPackets => "busy_packets",
    }
}

counter_enum! {
    /// Levels the worker publishes (set, not added).
    Gauge {
        /// Connections in this worker's table.
        Conns => "conns",
        /// The table's preallocated capacity.
        ConnCapacity => "conn_capacity",
        /// Memory per tracked connection, bytes (slab entry + both index entries + timer links).
        BytesPerConn => "bytes_per_conn",
        /// Neighbours (ARP entries) known.
        Neighbours => "neighbours",
        /// Packets held waiting for ARP resolution.
        NeighHeld => "neigh_held",
        /// Connections in ESTABLISHED.
        ConnsActive => "conns_active",
        /// SYN-proxied connections waiting for their real server.
        SynproxyHalfOpen => "synproxy_half_open",
        /// Client packets held by SYN-proxy until the real server answers.
        SynproxyHeld => "synproxy_held",
        /// Datagrams in the fragment table.
        FragDatagrams => "frag_datagrams",
        /// Fragments waiting for their datagram's first fragment.
        FragHeld => "frag_held",
    }
}

/// One worker's counters.
#[derive(Debug)]
pub struct Stats {
    drops: [AtomicU64; DropReason::COUNT],
    events: [AtomicU64; Event::COUNT],
    gauges: [AtomicU64; Gauge::COUNT],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
            events: std::array::from_fn(|_| AtomicU64::new(0)),
            gauges: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Stats {
    /// Counts a drop. Only the owning worker calls this.
    #[inline]
    pub fn dropped(&self, r: DropReason) {
        let c = &self.drops[r as usize];
        c.store(c.load(Relaxed) + 1, Relaxed);
    }

    /// Adds to an event counter. Only the owning worker calls this.
    #[inline]
    pub fn add(&self, e: Event, n: u64) {
        let c = &self.events[e as usize];
        c.store(c.load(Relaxed) + n, Relaxed);
    }

    #[inline]
    pub fn inc(&self, e: Event) {
        self.add(e, 1);
    }

    /// Publishes a level. Only the owning worker calls this.
    #[inline]
    pub fn set(&self, g: Gauge, v: u64) {
        self.gauges[g as usize].store(v, Relaxed);
    }

    pub fn gauge(&self, g: Gauge) -> u64 {
        self.gauges[g as usize].load(Relaxed)
    }

    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops[r as usize].load(Relaxed)
    }

    pub fn events(&self, e: Event) -> u64 {
        self.events[e as usize].load(Relaxed)
    }

    /// How far the packet accounting is off (0 when it balances). Every frame that enters a worker
    /// (received, handed over by another worker, or built here) is sent, handed to another worker,
    /// consumed, held, or dropped with one reason.
    ///
    /// Frames the gateway builds itself are ARP requests, SYN-proxy SYNs to real servers and RSTs
    /// to clients, PROXY protocol headers, and the fragments of a packet split for a smaller MTU. Consumed: an ARP reply at the end of its path through the workers, a real
    /// server's SYN-ACK that completes a proxied handshake. Held: awaiting ARP, or by SYN-proxy.
    /// `tx_full` and `handoff_full` drops are of frames already counted as sent or handed off.
    ///
    /// rx_packets + handoff_in + arp_requests_sent + synproxy_syns_sent + synproxy_rsts_generated +
    ///   proxy_headers_sent + fragments_built ==
    ///   tx_packets + handoff_out + (drops - tx_full - handoff_full) + arp_consumed
    ///   + synproxy_handshakes + neigh_held + synproxy_held + frag_held
    pub fn accounting_gap(&self) -> i64 {
        let out = self.frames_left()
            + self.gauge(Gauge::NeighHeld)
            + self.gauge(Gauge::SynproxyHeld)
            + self.gauge(Gauge::FragHeld);
        self.frames_entered() as i64 - out as i64
    }

    /// Frames that entered this worker: received, handed over by another worker, or built here
    /// (ARP requests, SYN-proxy SYNs and RSTs).
    pub fn frames_entered(&self) -> u64 {
        self.events(Event::RxPackets)
            + self.events(Event::HandoffIn)
            + self.events(Event::ArpRequestsSent)
            + self.events(Event::NdpSolicitsSent)
            + self.events(Event::SynproxySynsSent)
            + self.events(Event::SynproxyRstsGenerated)
            + self.events(Event::ProxyHeadersSent)
            + self.events(Event::FragmentsBuilt)
    }

    /// Frames that left for good: sent, handed to another worker, dropped (a TX or hand-off ring
    /// refusal is already counted as sent) or consumed. Held frames are not included.
    pub fn frames_left(&self) -> u64 {
        self.events(Event::TxPackets) + self.events(Event::HandoffOut) + self.total_drops()
            - self.drops(DropReason::TxFull)
            - self.drops(DropReason::HandoffFull)
            + self.events(Event::ArpConsumed)
            + self.events(Event::NdpConsumed)
            + self.events(Event::SynproxyHandshakes)
    }

    pub fn total_drops(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.drops(*r)).sum()
    }

    /// Gauges, then non-zero counters, as (name, value); drops are prefixed `drop.`.
    pub fn nonzero(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> =
            Gauge::ALL.iter().map(|g| (g.as_str().to_owned(), self.gauge(*g))).collect();
        for e in Event::ALL {
            let n = self.events(*e);
            if n != 0 {
                v.push((e.as_str().to_owned(), n));
            }
        }
        for r in DropReason::ALL {
            let n = self.drops(*r);
            if n != 0 {
                v.push((format!("drop.{}", r.as_str()), n));
            }
        }
        v
    }

    /// Resets every counter (`rvsadm -Z`). Racy against the writer by design: a concurrent increment
    /// may survive, which is what zeroing live counters means anyway.
    pub fn zero(&self) {
        for c in self.drops.iter().chain(self.events.iter()) {
            c.store(0, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_counters_count() {
        let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        names.extend(Event::ALL.iter().map(|e| e.as_str()));
        names.extend(Gauge::ALL.iter().map(|g| g.as_str()));
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        let s = Stats::default();
        s.dropped(DropReason::NoService);
        s.dropped(DropReason::NoService);
        s.add(Event::RxPackets, 5);
        assert_eq!(s.drops(DropReason::NoService), 2);
        assert_eq!(s.total_drops(), 2);
        s.set(Gauge::Conns, 7);
        let nz = s.nonzero();
        assert_eq!(nz[0], ("conns".into(), 7));
        assert_eq!(nz[Gauge::COUNT..], [("rx_packets".into(), 5), ("drop.no_service".into(), 2)]);
        s.zero();
        assert_eq!(s.total_drops(), 0);
    }
}
