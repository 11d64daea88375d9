#!/usr/bin/env python3
"""Independent oracle for rvsadm's golden files.

Regenerates control/tests/golden/*.txt from the fixture below (the same data as
control/tests/golden.rs) by transcribing ipvsadm 1.31's printf calls (ipvsadm.c: list_all,
print_title, print_service_entry, print_largenum, list_conn, print_conn, list_timeout) into Python's
%-formatting,
which follows C printf. It shares no code with rvsadm. Run: python3 printf_oracle.py
"""
import ipaddress
import os

# (proto, vip, sched, persistence, toa, synproxy, laddrs, [(addr, weight, fwd, uthr, lthr, act, inact)])
SERVICES = [
    ("udp", "198.18.0.100:53", "wrr", None, False, False, ["198.18.1.100"], [
        ("198.18.1.22:53", 0, "fullnat", 100, 10, 0, 0),
        ("198.18.1.21:53", 10, "fullnat", 0, 0, 0, 7),
        ("198.18.1.24:5353", 1, "nat", 0, 0, 2, 0),
        ("198.18.1.23:53", 2, "dr", 0, 0, 0, 1),
        ("198.18.9.25:53", 3, "tun", 0, 0, 1, 1),
    ]),
    ("tcp", "198.18.0.100:80", "rr", 300, True, True, ["198.18.1.100", "198.18.1.101"], [
        ("198.18.1.13:8080", 5, "fullnat", 0, 0, 1234, 56),
        ("198.18.1.11:80", 1, "fullnat", 0, 0, 12, 3),
        ("198.18.1.12:80", 2, "fullnat", 0, 0, 0, 0),
    ]),
]
# counters: conns inpkts outpkts inbytes outbytes cps inpps outpps inbps outbps
STATS = {
    ("tcp", "198.18.0.100:80"): ((1302, 987654321, 12345678901, 123456789012, 234567890123456,
                                  15, 4321, 4000, 123456789, 99999999), {
        "198.18.1.11:80": (100, 5000, 4800, 350000, 7200000, 5, 1000, 900, 80000, 1200000),
        "198.18.1.13:8080": (1202, 987649321, 12345674101, 123456439012, 234567882923456,
                             10, 3321, 3100, 123376789, 98799999),
    }),
    ("udp", "198.18.0.100:53"): ((7, 7, 7, 420, 980, 0, 0, 0, 0, 0), {
        "198.18.1.21:53": (7, 7, 7, 420, 980, 0, 0, 0, 0, 0),
    }),
}
# (proto, client, vip, lip, rs, state, expires_ms); ipvsadm's -Lc shows no forwarding method
CONNS = [
    ("tcp", "203.0.113.7:51234", "198.18.0.100:80", "198.18.1.100:40001", "198.18.1.11:80", "ESTABLISHED", 899500),
    ("tcp", "203.0.113.200:65535", "198.18.0.100:80", "198.18.1.101:40002", "198.18.1.13:8080", "SYN_RECV", 30000),
    ("udp", "203.0.113.9:5353", "198.18.0.100:53", "198.18.1.100:40003", "198.18.1.21:53", "UDP", 299999),
    ("tcp", "203.0.113.8:60000", "198.18.0.100:80", "198.18.1.101:40004", "198.18.1.12:80", "TIME_WAIT", 120000),
    ("tcp", "10.0.0.1:0", "198.18.0.100:80", "0.0.0.0:0", "198.18.1.11:80", "NONE", 10803000),
    # NAT, DR, TUN: no local address (rvs's --show-lip column is blank)
    ("udp", "203.0.113.9:5354", "198.18.0.100:53", "", "198.18.1.24:5353", "UDP", 120000),
    ("udp", "203.0.113.9:5355", "198.18.0.100:53", "", "198.18.1.23:53", "UDP", 60000),
    ("udp", "203.0.113.9:5356", "198.18.0.100:53", "", "198.18.9.25:53", "UDP", 1000),
]

FWD_NAME = {"fullnat": "FullNat", "nat": "Masq", "dr": "Route", "tun": "Tunnel"}
FWD_SWITCH = {"fullnat": "-b", "nat": "-m", "dr": "-g", "tun": "-i"}
ZERO = (0,) * 10


def ep(s):  # addrport_to_anyname's "%s%s%s:%u": "[" and "]" around an AF_INET6 address
    a, p = s.rsplit(":", 1)
    return int(ipaddress.ip_address(a.strip("[]"))), int(p)


def af(s):  # AF_INET 2, AF_INET6 10
    return 10 if s.startswith("[") else 2


def sorted_svcs(services=None):  # ipvs_cmp_services: family, protocol, address, port
    return sorted(services or SERVICES, key=lambda s: (af(s[1]), {"tcp": 6, "udp": 17}[s[0]], ep(s[1])))


def sorted_reals(s):  # ipvs_cmp_dests: address, port
    return sorted(s[7], key=lambda r: (af(r[0]), ep(r[0])))


def largenum(i, exact):  # print_largenum
    if exact:
        n = len("%d" % i)
        return "%*d" % (9 if n <= 8 else n + 1, i)
    if i < 100000000:
        return "%9d" % i
    if i < 1000000000:
        return "%8dK" % (i // 1000)
    if i < 100000000000:
        return "%8dM" % (i // 1000000)
    if i < 100000000000000:
        return "%8dG" % (i // 1000000000)
    return "%8dT" % (i // 1000000000000)


def title(view):  # print_title
    if view == "stats":
        return "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
    if view == "rate":
        return "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
    if view == "thresholds":
        return "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
    return ("Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")


def service_entry(s, view, exact, stats=None):  # print_service_entry
    proto, vip, sched, pers, toa, syn, laddrs, reals = s
    svc_name = "%-4s %s" % (proto.upper(), vip)
    if af(vip) != 10:
        svc_name = svc_name[:33]
    st, rst = (stats or STATS).get((proto, vip), (ZERO, {}))
    out = ""
    if view == "stats":
        out += "%-33s" % svc_name + "".join(largenum(x, exact) for x in st[0:5])
    elif view == "rate":
        out += "%-33s" % svc_name + "".join(largenum(x, exact) for x in st[5:10])
    else:
        out += "%s %s" % (svc_name, sched)
        if pers:
            out += " persistent %u" % pers
        if syn:
            out += " synproxy"          # DPVS
        if toa:
            out += " toa"               # rvs
    out += "\n"
    for (addr, w, fwd, ut, lt, act, inact) in sorted_reals(s):
        dname = addr if af(addr) == 10 else addr[:28]
        c = rst.get(addr, ZERO)
        if view == "stats":
            out += "  -> %-28s" % dname + "".join(largenum(x, exact) for x in c[0:5]) + "\n"
        elif view == "rate":
            out += "  -> %-28s %8u %8u %8u" % (dname, c[5], c[6], c[7])
            out += largenum(c[8], exact) + largenum(c[9], exact) + "\n"
        elif view == "thresholds":
            out += "  -> %-28s %-10u %-10u %-10u %-10u\n" % (dname, ut, lt, act, inact)
        else:
            out += "  -> %-28s %-7s %-6d %-10u %-10u\n" % (dname, FWD_NAME[fwd], w, act, inact)
    return out


def list_all(view, exact=False, services=None, stats=None):
    out = "IP Virtual Server version %d.%d.%d (size=%d)\n" % (1, 2, 1, 4096)
    out += title(view)
    for s in sorted_svcs(services):
        out += service_entry(s, view, exact, stats)
    return out


def list_service(vip, view):  # list_service: no banner
    return title(view) + "".join(service_entry(s, view, False) for s in SERVICES if s[1] == vip and s[0] == "tcp")


def list_conn(show_lip, conns=None):
    out = "IPVS connection entries\n"
    if show_lip:
        out += "pro expire %-11s %-18s %-18s %-18s %s\n" % ("state", "source", "virtual", "local", "destination")
    else:
        out += "pro expire %-11s %-18s %-18s %s\n" % ("state", "source", "virtual", "destination")
    for (proto, c, v, l, d, state, ms) in conns or CONNS:
        expires = ms // 1000
        expire_str = "%02d:%02d" % (expires // 60, expires % 60)
        if show_lip:
            out += "%-3s %-6s %-11s %-18s %-18s %-18s %s\n" % (proto.upper(), expire_str, state, c, v, l, d)
        else:
            out += "%-3s %-6s %-11s %-18s %-18s %s\n" % (proto.upper(), expire_str, state, c, v, d)
    return out


def save(services=None):  # list_all(FMT_RULE)
    out = ""
    for s in sorted_svcs(services):
        proto, vip, sched, pers, toa, syn, laddrs, reals = s
        svc_name = "%s %s" % ("-t" if proto == "tcp" else "-u", vip)
        out += "-A %s -s %s" % (svc_name, sched)
        if pers:
            out += " -p %u" % pers
        if syn:
            out += " -j enable"         # DPVS switch
        if toa:
            out += " --toa on"          # rvs
        out += "\n"
        for l in laddrs:
            out += "--add-laddr %s -z %s\n" % (svc_name, l)   # DPVS command, rvs prints it
        for (addr, w, fwd, ut, lt, act, inact) in sorted_reals(s):
            out += "-a %s -r %s %s -w %d" % (svc_name, addr, FWD_SWITCH[fwd], w)
            if ut:
                out += " -x %u" % ut
            if lt:
                out += " -y %u" % lt
            out += "\n"
    return out


def get_laddr():  # DPVS list_all_laddrs, without the per-address counters
    out = "%-20s %-8s %-20s\n" % ("VIP:VPORT", "TOTAL", "SNAT_IP")
    for s in sorted_svcs():
        out += "%-20s %-8u \n" % (s[1], len(s[6]))
        for l in s[6]:
            out += "%-20s %-8s %-20s\n" % ("", "", l)
    return out


# A keepalived-managed pair of services (second fixture): health-check verdicts, keepalived's
# inhibit_on_failure, persistence templates per real server, and changed timeouts.
# (proto, vip, sched, persistence, inhibit_on_failure, laddrs,
#  [(addr, weight, health, act, inact, persistconns)])
KA_SERVICES = [
    ("tcp", "198.18.0.100:443", "wlc", None, True, ["198.18.1.100"], [
        ("198.18.1.12:443", 1, "up", 5, 2, 0),
        ("198.18.1.11:443", 3, "down", 1, 0, 0),
    ]),
    ("tcp", "198.18.0.100:80", "rr", 360, False, ["198.18.1.100"], [
        ("198.18.1.12:80", 2, "down", 2, 1, 1),
        ("198.18.1.11:80", 1, "up", 3, 1, 4),
    ]),
]
KA_TIMEOUTS = (900, 60, 300)


def ka_sorted():
    return sorted(KA_SERVICES, key=lambda s: ({"tcp": 6, "udp": 17}[s[0]], ep(s[1])))


def ka_listed(s):
    # keepalived (check/ipwrapper.c, update_svr_checker_state -> perform_svr_state): a failed real
    # server is removed from the IPVS table, or with inhibit_on_failure set to weight 0; ipvsadm
    # lists what the table holds.
    for (addr, w, health, act, inact, pc) in sorted(s[6], key=lambda r: ep(r[0])):
        if health == "down" and not s[4]:
            continue
        yield addr, (0 if health == "down" else w), act, inact, pc


def ka_list(persistconn):  # list_all with FMT_NONE or FMT_PERSISTENTCONN
    out = "IP Virtual Server version %d.%d.%d (size=%d)\n" % (1, 2, 1, 4096)
    if persistconn:
        out += "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
    else:
        out += title("plain")
    for s in ka_sorted():
        proto, vip, sched, pers, inhibit, laddrs, reals = s
        out += "%s %s" % (("%s  %s" % (proto.upper(), vip))[:33], sched)
        if pers:
            out += " persistent %u" % pers
        out += "\n"
        for addr, w, act, inact, pc in ka_listed(s):
            if persistconn:
                out += "  -> %-28s %-9u %-11u %-10u %-10u\n" % (addr[:28], w, pc, act, inact)
            else:
                out += "  -> %-28s %-7s %-6d %-10u %-10u\n" % (addr[:28], "FullNat", w, act, inact)
    return out


def ka_save():  # list_all(FMT_RULE) after rvs's --set line; -S keeps configured weights
    out = "--set %d %d %d\n" % KA_TIMEOUTS
    for s in ka_sorted():
        proto, vip, sched, pers, inhibit, laddrs, reals = s
        svc_name = "%s %s" % ("-t" if proto == "tcp" else "-u", vip)
        out += "-A %s -s %s" % (svc_name, sched)
        if pers:
            out += " -p %u" % pers
        if inhibit:
            out += " --inhibit-on-failure"   # rvs, keepalived's keyword
        out += "\n"
        for l in laddrs:
            out += "--add-laddr %s -z %s\n" % (svc_name, l)
        for (addr, w, health, act, inact, pc) in sorted(reals, key=lambda r: ep(r[0])):
            out += "-a %s -r %s %s -w %d\n" % (svc_name, addr, "-b", w)
    return out


def conn_persist():  # list_conn with FMT_PERSISTENTCONN; print_conn rows without a pe (n != 11)
    out = "IPVS connection entries\n"
    out += "pro expire %-11s %-18s %-18s %-18s %-16s %s\n" % (
        "state", "source", "virtual", "destination", "pe name", "pe_data")
    for (proto, c, v, l, d, state, ms) in CONNS:
        expires = ms // 1000
        out += "%-3s %-6s %-11s %-18s %-18s %s\n" % (
            proto.upper(), "%02d:%02d" % (expires // 60, expires % 60), state, c, v, d)
    return out


# rvsadm --ports (DPVS's dpip -s link show, tools/dpip/link.c): (name, device, driver, mac, addr, mtu,
# rxq, txq, link, stats); link is None (unknown) or (up, speed or None, duplex or None, autoneg);
# stats is None or (ipackets, opackets, ibytes, obytes, ierrors, oerrors, imissed, rx_nombuf).
PORTS = [
    ("client", "net_af_packet0,iface=gc", "net_af_packet", "02:00:5e:00:53:01", "198.18.0.1/24", 1500,
     1, 1, (True, 10000, "full", False), (155, 154, 12345, 23456, 0, 1, 2, 3)),
    ("server", "0000:03:00.0", "net_ixgbe", "a0:36:9f:74:ee:98", "198.18.1.1/24", 9000,
     4, 4, (False, None, None, True), (123456789012, 0, 98765432109876, 0, 7, 0, 0, 0)),
    ("mem", "net_memif0,role=server", "net_memif", "be:ef:00:00:00:01", "198.18.2.1/24", 1500,
     2, 2, None, None),
]


def ports():
    out = ""
    for i, (name, dev, drv, mac, addr, mtu, rxq, txq, link, stats) in enumerate(PORTS):
        out += "%d: %s: device %s driver %s mtu %d rx-queue %d tx-queue %d\n" % (
            i + 1, name, dev, drv, mtu, rxq, txq)
        if link is None:
            l = "link unknown"
        elif not link[0]:
            l = "DOWN"
        else:
            l = "UP"
            if link[1] is not None:
                l += " %u Mbps" % link[1]
            if link[2] is not None:
                l += " %s-duplex" % link[2]
            l += " auto-nego" if link[3] else " fixed-nego"
        out += "    %s\n    addr %s inet %s\n" % (l, mac, addr)
        if stats is None:
            out += "    counters unknown\n"
        else:
            row = "    %-20s%-20s%-20s%s\n"
            out += row % ("ipackets", "opackets", "ibytes", "obytes")
            out += row % tuple("%lu" % n for n in stats[:4])
            out += row % ("ierrors", "oerrors", "imissed", "rx_nombuf")
            out += row % tuple("%lu" % n for n in stats[4:])
    return out


# Dual stack (third fixture): an IPv4 service, IPv6 ones (FULLNAT, UDP, NAT64 to IPv4 real servers)
# with names longer than the 33 and 28 columns, which ipvsadm cuts only for IPv4.
V6_SERVICES = [
    ("tcp", "[2001:2::101]:80", "rr", None, True, False, ["198.18.1.101"], [
        ("198.18.1.12:80", 1, "fullnat", 0, 0, 4, 0),
        ("198.18.1.11:80", 1, "fullnat", 0, 0, 5, 1),
    ]),
    ("udp", "[2001:2::100]:53", "rr", None, False, False, ["2001:2:0:1::100"], [
        ("[2001:2:0:1::11]:53", 1, "fullnat", 0, 0, 0, 3),
    ]),
    ("tcp", "[2001:2:0:ffff:ffff:ffff:ffff:ff00]:65535", "wlc", 300, False, True,
     ["2001:2:0:1::100", "2001:2:0:1::101"], [
        ("[2001:2:0:1:ffff:ffff:ffff:ff13]:65535", 2, "fullnat", 0, 0, 1, 0),
        ("[2001:2:0:1::12]:65535", 1, "dr", 0, 0, 0, 0),
    ]),
    ("tcp", "[2001:2::100]:80", "rr", None, True, False, ["2001:2:0:1::100"], [
        ("[2001:2:0:1::13]:8080", 3, "fullnat", 100, 10, 7, 2),
        ("[2001:2:0:1::11]:80", 1, "fullnat", 0, 0, 12, 3),
        ("[2001:2:0:1::12]:80", 1, "tun", 0, 0, 11, 4),
    ]),
    ("tcp", "198.18.0.100:80", "rr", None, False, False, ["198.18.1.100"], [
        ("198.18.1.11:80", 1, "fullnat", 0, 0, 1, 0),
    ]),
]
V6_STATS = {
    ("tcp", "[2001:2::100]:80"): ((300, 4500, 4200, 123456789, 104857600000, 5, 75, 70, 2057613, 1747626666), {
        "[2001:2:0:1::11]:80": (100, 1500, 1400, 41152263, 34952533333, 2, 25, 23, 685871, 582542222),
        "[2001:2:0:1::13]:8080": (100, 1500, 1400, 41152263, 34952533333, 2, 25, 23, 685871, 582542222),
    }),
    ("tcp", "[2001:2:0:ffff:ffff:ffff:ffff:ff00]:65535"): ((1, 2, 3, 4, 5, 0, 0, 0, 0, 0), {
        "[2001:2:0:1:ffff:ffff:ffff:ff13]:65535": (1, 2, 3, 4, 5, 0, 0, 0, 0, 0),
    }),
}
V6_CONNS = [
    ("tcp", "[2001:2::c1]:51234", "[2001:2::100]:80", "[2001:2:0:1::100]:40001", "[2001:2:0:1::11]:80",
     "ESTABLISHED", 899500),
    ("tcp", "[2001:2:0:ffff:ffff:ffff:ffff:c2]:65535", "[2001:2::101]:80", "198.18.1.101:40002",
     "198.18.1.12:80", "SYN_RECV", 30000),
    ("udp", "[2001:2::c1]:5353", "[2001:2::100]:53", "[2001:2:0:1::100]:40003", "[2001:2:0:1::11]:53",
     "UDP", 299999),
    ("tcp", "203.0.113.7:51234", "198.18.0.100:80", "198.18.1.100:40004", "198.18.1.11:80", "TIME_WAIT", 120000),
]

FILES = {
    "list_v6.txt": list_all("plain", services=V6_SERVICES, stats=V6_STATS),
    "list_v6_stats.txt": list_all("stats", services=V6_SERVICES, stats=V6_STATS),
    "list_v6_rate.txt": list_all("rate", services=V6_SERVICES, stats=V6_STATS),
    "list_v6_thresholds.txt": list_all("thresholds", services=V6_SERVICES, stats=V6_STATS),
    "conns_v6.txt": list_conn(False, V6_CONNS),
    "conns_v6_lip.txt": list_conn(True, V6_CONNS),
    "save_v6.txt": save(V6_SERVICES),
    "ports.txt": ports(),
    "list_keepalived.txt": ka_list(False),
    "list_persistent_conn.txt": ka_list(True),
    "save_keepalived.txt": ka_save(),
    "conns_persist.txt": conn_persist(),
    "timeout.txt": "Timeout (tcp tcpfin udp): %d %d %d\n" % KA_TIMEOUTS,  # list_timeout
    "list.txt": list_all("plain"),
    "list_stats.txt": list_all("stats"),
    "list_rate.txt": list_all("rate"),
    "list_stats_exact.txt": list_all("stats", exact=True),
    "list_rate_exact.txt": list_all("rate", exact=True),
    "list_thresholds.txt": list_all("thresholds"),
    "list_one.txt": list_service("198.18.0.100:80", "plain"),
    "conns.txt": list_conn(False),
    "conns_lip.txt": list_conn(True),
    "save.txt": save(),
    "laddrs.txt": get_laddr(),
}

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    for name, text in FILES.items():
        with open(os.path.join(here, name), "w") as f:
            f.write(text)
