# TRex stateless (STL) profile for scenario a, established-flow forwarding, client -> VIP direction.
#
# Many UDP flows from clients behind the generator to one VIP:port, at a fixed frame size. rvsd
# creates one FULLNAT connection per distinct (client address, client port) on the first packet,
# so after the first pass over the tuple space every packet belongs to an established
# connection: run for a few seconds, clear the counters, then measure.
#
#   trex-console (server started with ./t-rex-64 -i):
#     start -f bench/profiles/trex_stl_a_udp.py -p 0 -m 100% -d 30 -t size=64,conns=1000000
#   rate: -m <N>mpps or -m <N>% of line rate; the forwarded rate is port 1's rx pps.
#
# Port set-up (trex_cfg.yaml, docs/benchmarking.md "TRex"): both ports in L3 mode, i.e. `ip` and
# `default_gw` rather than `dest_mac`. Port 0 `ip: 198.18.0.254, default_gw: 198.18.0.1`: TRex
# resolves rvsd's client-port MAC by ARP (or read it with `rvsadm --ports`; on memif fix it with
# `mac=` in rvsd's device string). Port 1 `ip: 198.18.1.11` = the real server: TRex answers rvsd's
# ARP for it. With `dest_mac` on port 1 nothing answers, rvsd's ARP for the real server stays
# unresolved and nothing is forwarded (drop.neigh_queue_full grows).
#
# Tunables (-t key=value,...):
#   size   frame size with FCS, 64..1518 (default 64)
#   conns  distinct client tuples = connections in rvsd's table (default 1000000), exact: the
#          tuple generator walks client addresses first, then ports, and stops at `conns` flows
#          (its limit_flows, which otherwise defaults to 100,000 whatever the ranges)
#   vip    VIP address (default 198.18.0.100), vport (default 53)
#   client first client address (default 198.19.0.1); clients are routed to rvsd's client port,
#          e.g. rvsd `[[routes]] dst = "198.19.0.0/16" via = "198.18.0.254"` (TRex port 0)
#
# rvsd needs `max_per_worker` above `conns` and one local address per ~64k connections to a real
# server (`laddrs`: 16 for 1M to one real). Checksums: the field engine rewrites the source
# address and port, and STLVmFixChecksumHw makes the NIC (or TRex in software) recompute the IPv4
# and UDP checksums, which rvsd verifies on a connection's first packet.
import ipaddress

from trex_stl_lib.api import *

PORTS_PER_CLIENT = 64000  # client ports 1024 .. 65023


class ScenarioA(object):
    def create_stream(self, size, conns, vip, vport, client):
        conns = max(1, conns)
        clients = (conns + PORTS_PER_CLIENT - 1) // PORTS_PER_CLIENT
        ports = (conns + clients - 1) // clients  # clients x ports >= conns; limit_flows cuts at conns
        first = int(ipaddress.IPv4Address(client))
        last = str(ipaddress.IPv4Address(first + clients - 1))

        base = Ether() / IP(src=client, dst=vip, ttl=64) / UDP(sport=1024, dport=vport)
        pad = max(0, size - 4 - len(base)) * b"x"  # -4: the NIC appends the FCS

        vm = STLScVmRaw([
            # Exactly `conns` (address, port) pairs per pass: limit_flows defaults to 100,000.
            STLVmTupleGen(ip_min=client, ip_max=last, port_min=1024, port_max=1024 + ports - 1,
                          limit_flows=conns, name="tuple"),
            STLVmWrFlowVar(fv_name="tuple.ip", pkt_offset="IP.src"),
            STLVmWrFlowVar(fv_name="tuple.port", pkt_offset="UDP.sport"),
            # Must be last: fixes the IPv4 and UDP checksums after all writes.
            STLVmFixChecksumHw(l3_offset="IP", l4_offset="UDP", l4_type=CTRexVmInsFixHwCs.L4_TYPE_UDP),
        ])
        return STLStream(packet=STLPktBuilder(pkt=base / pad, vm=vm), mode=STLTXCont())

    def get_streams(self, direction=0, **kwargs):
        return [self.create_stream(
            size=int(kwargs.get("size", 64)),
            conns=int(kwargs.get("conns", 1000000)),
            vip=kwargs.get("vip", "198.18.0.100"),
            vport=int(kwargs.get("vport", 53)),
            client=kwargs.get("client", "198.19.0.1"),
        )]


def register():
    return ScenarioA()
