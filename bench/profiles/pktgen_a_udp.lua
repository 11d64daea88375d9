-- pktgen-dpdk Lua script for scenario a, established-flow forwarding, client -> VIP direction.
--
-- UDP flows from one client address and a range of client ports to one VIP:port, 64-byte frames
-- by default. rvsd creates a FULLNAT connection on each flow's first packet; after the warm-up
-- every packet is established traffic. pktgen port 0 faces rvsd's client port; port 1 faces its
-- server port, owns the real server's address (answers rvsd's ARP for it) and counts what rvsd
-- forwarded. The script runs a warm-up, a measured window, prints one result line beginning
-- "rvs-pktgen:" and quits pktgen, so an unattended run ends by itself.
--
-- Needs no file from pktgen's tree (no `require "Pktgen"`): run it from any directory. The exact
-- command lines (2 CPUs and 3+ CPUs, memif or real ports) are in docs/benchmarking.md
-- ("pktgen-dpdk"); bench/pktgen.sh runs it against rvsd and testpmd over memif. 2 CPUs:
--
--   pktgen --lcores 0@0,1@0 -n 4 --file-prefix pg --no-pci --no-huge -m 4096 \
--       --vdev net_memif0,role=client,socket=/tmp/rvs/c.sock,id=0 \
--       --vdev net_memif1,role=client,socket=/tmp/rvs/s.sock,id=0 \
--       -- -P -m "1.[0-1]" -f bench/profiles/pktgen_a_udp.lua
--
-- Settings come from the environment (pktgen passes no arguments to scripts):
--   RVS_PG_DST_MAC  rvsd's client-port MAC (`rvsadm --ports`, "addr"; memif: fix it with `mac=`
--                   in rvsd's device string). Default 02:00:5e:00:53:01.
--   RVS_PG_FLOWS    distinct flows, 1 .. 24576 (default 1000). In range mode pktgen builds its
--                   packets once, into a pool of 24,576 buffers per queue, and steps every field
--                   independently, so the flows here are client ports PORT_FIRST .. +FLOWS-1 of
--                   one client address: exactly FLOWS connections, at most 24,576. More flows
--                   (1M) need pktgen's pcap mode (-s 0:flows.pcap), see docs/benchmarking.md.
--   RVS_PG_SIZE     frame size with FCS (default 64)
--   RVS_PG_RATE     percent of the port's line rate (default 100)
--   RVS_PG_WARMUP_MS, RVS_PG_MEASURE_MS  warm-up and measured window (default 2000, 5000)
--   RVS_PG_QUIT     0 keeps pktgen running after the result (default 1: quit)
--   RVS_PG_MODE     range (default) or pcap: port 0 replays the file given to pktgen with
--                   `-s 0:FILE` (bench/profiles/pktgen_flows_pcap.py writes one frame per flow;
--                   RVS_PG_FLOWS is then only the label printed)
--   RVS_PG_GEN_ADDR (198.18.0.254/24), RVS_PG_REAL_ADDR (198.18.1.11/24), RVS_PG_VIP
--   (198.18.0.100), RVS_PG_VPORT (53), RVS_PG_CLIENT (198.19.0.1): the addresses.
-- Tested with pktgen-dpdk 23.03.0 on DPDK 22.11 plus bench/profiles/pktgen-23.03.patch.
local function env(k, d)
    local v = os.getenv(k)
    if v == nil or v == "" then return d end
    return v
end

local GEN, SINK = "0", "1"            -- port 0: client side (sends); port 1: real server (counts)
local RVSD_CLIENT_MAC = env("RVS_PG_DST_MAC", "02:00:5e:00:53:01")
local GEN_ADDR = env("RVS_PG_GEN_ADDR", "198.18.0.254/24")  -- rvsd: [[routes]] 198.19.0.0/16 via this
local REAL_ADDR = env("RVS_PG_REAL_ADDR", "198.18.1.11/24") -- the real server (rvsd's reals)
local VIP = env("RVS_PG_VIP", "198.18.0.100")
local VPORT = tonumber(env("RVS_PG_VPORT", "53"))
local CLIENT = env("RVS_PG_CLIENT", "198.19.0.1")
local FLOWS = tonumber(env("RVS_PG_FLOWS", "1000"))
local PORT_FIRST = 1024
local SIZE = tonumber(env("RVS_PG_SIZE", "64"))
local RATE = tonumber(env("RVS_PG_RATE", "100"))
local WARMUP_MS = tonumber(env("RVS_PG_WARMUP_MS", "2000"))
local MEASURE_MS = tonumber(env("RVS_PG_MEASURE_MS", "5000"))
local QUIT = env("RVS_PG_QUIT", "1") ~= "0"
local MODE = env("RVS_PG_MODE", "range")

if MODE == "range" and (FLOWS < 1 or FLOWS > 24576 or PORT_FIRST + FLOWS - 1 > 65535) then
    print("rvs-pktgen: RVS_PG_FLOWS must be 1 .. 24576 in range mode (more: pcap mode)")
    if QUIT then pktgen.quit() end
    return
end

pktgen.screen("off")

-- Both ports own an address and answer ARP for it ("enable all process"): rvsd resolves the real
-- server (port 1) before it forwards, and its route to the clients' gateway (port 0).
pktgen.set_ipaddr(GEN, "src", GEN_ADDR)
pktgen.set_ipaddr(SINK, "src", REAL_ADDR)
pktgen.process("all", "on")

if MODE == "range" then
    pktgen.set_type(GEN, "ipv4")
    pktgen.set_proto(GEN, "udp")
    pktgen.set(GEN, "size", SIZE)
    pktgen.set(GEN, "rate", RATE)

    pktgen.range.dst_mac(GEN, "start", RVSD_CLIENT_MAC)
    pktgen.range.dst_mac(GEN, "inc", "00:00:00:00:00:00")
    pktgen.range.ip_proto(GEN, "udp")

    pktgen.range.dst_ip(GEN, "start", VIP)
    pktgen.range.dst_ip(GEN, "inc", "0.0.0.0")
    pktgen.range.dst_ip(GEN, "min", VIP)
    pktgen.range.dst_ip(GEN, "max", VIP)

    -- One client address; its port is the only field that steps, so the flow count is exact.
    pktgen.range.src_ip(GEN, "start", CLIENT)
    pktgen.range.src_ip(GEN, "inc", "0.0.0.0")
    pktgen.range.src_ip(GEN, "min", CLIENT)
    pktgen.range.src_ip(GEN, "max", CLIENT)

    pktgen.range.dst_port(GEN, "start", VPORT)
    pktgen.range.dst_port(GEN, "inc", 0)
    pktgen.range.dst_port(GEN, "min", VPORT)
    pktgen.range.dst_port(GEN, "max", VPORT)

    pktgen.range.src_port(GEN, "start", PORT_FIRST)
    pktgen.range.src_port(GEN, "inc", 1)
    pktgen.range.src_port(GEN, "min", PORT_FIRST)
    pktgen.range.src_port(GEN, "max", PORT_FIRST + FLOWS - 1)

    pktgen.range.ttl(GEN, "start", 64)
    pktgen.range.ttl(GEN, "inc", 0)
    pktgen.range.ttl(GEN, "min", 64)
    pktgen.range.ttl(GEN, "max", 64)

    pktgen.range.pkt_size(GEN, "start", SIZE)
    pktgen.range.pkt_size(GEN, "inc", 0)
    pktgen.range.pkt_size(GEN, "min", SIZE)
    pktgen.range.pkt_size(GEN, "max", SIZE)

    pktgen.set_range(GEN, "on")
end

-- Warm-up: the first packet of each flow creates its connection (and the first ones wait for
-- rvsd's ARP of the real server).
pktgen.start(GEN)
pktgen.delay(WARMUP_MS)
pktgen.clr()                          -- counters from here: the measured window

pktgen.delay(MEASURE_MS)
pktgen.stop(GEN)
pktgen.delay(1500)                    -- in-flight frames arrive; the 1 s stats timer catches up

local tx = pktgen.portStats(GEN, "port")[tonumber(GEN)]
local rx = pktgen.portStats(SINK, "port")[tonumber(SINK)]
local secs = MEASURE_MS / 1000
print(string.format("rvs-pktgen: flows %d size %d tx_mpps %.4f fwd_mpps %.4f fwd_gbps_l1 %.3f loss_pct %.3f " ..
    "tx %d rx %d rx_imissed %d rx_nombuf %d tx_oerrors %d",
    FLOWS, SIZE, tx.opackets / secs / 1e6, rx.ipackets / secs / 1e6,
    rx.ipackets * (SIZE + 20) * 8 / secs / 1e9,
    100 * (1 - rx.ipackets / math.max(tx.opackets, 1)),
    tx.opackets, rx.ipackets, rx.imissed, rx.rx_nombuf, tx.oerrors))
io.stdout:flush()

if QUIT then pktgen.quit() end
