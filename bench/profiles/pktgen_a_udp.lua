-- pktgen-dpdk Lua script for scenario a, established-flow forwarding, client -> VIP direction.
--
-- UDP flows from a range of client addresses and ports to one VIP:port at 64 bytes. rvsd creates
-- a FULLNAT connection on each flow's first packet; after one pass over the range every packet
-- is established traffic. pktgen port 0 faces rvsd's client port; port 1 faces its server port
-- and counts what rvsd forwarded (its address must be the real server's, e.g. 198.18.1.11).
--
--   pktgen -l 0-2 -n 4 -a <gen port 0 PCI> -a <gen port 1 PCI> -- -P -m "[1].0,[2].1" \
--          -f bench/profiles/pktgen_a_udp.lua
--
-- Edit the values below (pktgen passes no arguments to scripts). Flows = CLIENTS x PORTS.
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local GEN = "0"                       -- pktgen port facing rvsd's client port
local RVSD_CLIENT_MAC = "02:00:00:00:00:01" -- rvsd's client-port MAC (rvsadm / rvsd log)
local VIP = "198.18.0.100"
local VPORT = 53
local CLIENT_FIRST = "198.19.0.1"     -- routed to rvsd: [[routes]] dst = "198.19.0.0/16"
local CLIENT_LAST = "198.19.0.16"     -- 16 clients ...
local PORT_FIRST = 1024
local PORT_LAST = 1024 + 62499        -- ... x 62500 ports = 1M connections
local SIZE = 64                       -- frame size with FCS: 64, 128, 512, 1500
local RATE = 100                      -- percent of line rate
local WARMUP_MS = 5000                -- one pass over the flows at the chosen rate, at least
local MEASURE_MS = 30000

pktgen.reset(GEN)
pktgen.set_type(GEN, "ipv4")
pktgen.set_proto(GEN, "udp")
pktgen.set(GEN, "size", SIZE)
pktgen.set(GEN, "rate", RATE)

pktgen.range.dst_mac(GEN, "start", RVSD_CLIENT_MAC)
pktgen.range.ip_proto(GEN, "udp")

pktgen.range.dst_ip(GEN, "start", VIP)
pktgen.range.dst_ip(GEN, "inc", "0.0.0.0")
pktgen.range.dst_ip(GEN, "min", VIP)
pktgen.range.dst_ip(GEN, "max", VIP)

pktgen.range.src_ip(GEN, "start", CLIENT_FIRST)
pktgen.range.src_ip(GEN, "inc", "0.0.0.1")
pktgen.range.src_ip(GEN, "min", CLIENT_FIRST)
pktgen.range.src_ip(GEN, "max", CLIENT_LAST)

pktgen.range.dst_port(GEN, "start", VPORT)
pktgen.range.dst_port(GEN, "inc", 0)
pktgen.range.dst_port(GEN, "min", VPORT)
pktgen.range.dst_port(GEN, "max", VPORT)

pktgen.range.src_port(GEN, "start", PORT_FIRST)
pktgen.range.src_port(GEN, "inc", 1)
pktgen.range.src_port(GEN, "min", PORT_FIRST)
pktgen.range.src_port(GEN, "max", PORT_LAST)

pktgen.range.ttl(GEN, "start", 64)
pktgen.range.ttl(GEN, "inc", 0)
pktgen.range.ttl(GEN, "min", 64)
pktgen.range.ttl(GEN, "max", 64)

pktgen.range.pkt_size(GEN, "start", SIZE)
pktgen.range.pkt_size(GEN, "inc", 0)
pktgen.range.pkt_size(GEN, "min", SIZE)
pktgen.range.pkt_size(GEN, "max", SIZE)

pktgen.set_range(GEN, "on")

-- Warm-up: the first packet of each flow creates its connection.
pktgen.start(GEN)
pktgen.delay(WARMUP_MS)
pktgen.clr()

pktgen.delay(MEASURE_MS)
pktgen.stop(GEN)
pktgen.delay(1000)

local tx = pktgen.portStats(GEN, "port")[tonumber(GEN)]
local rx = pktgen.portStats("1", "port")[1]
local secs = MEASURE_MS / 1000
print(string.format("scenario a: %d B, tx %.3f Mpps, forwarded %.3f Mpps (%.3f Gbps L1), loss %.4f%%",
    SIZE, tx.opackets / secs / 1e6, rx.ipackets / secs / 1e6,
    rx.ipackets * (SIZE + 20) * 8 / secs / 1e9,
    100 * (1 - rx.ipackets / math.max(tx.opackets, 1))))
