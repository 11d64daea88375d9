#!/usr/bin/env bash
# The FULLNAT suite (curl split, TOA, UDP, 100 MB with sha256, wrk with 0 errors, expiry) with two
# workers on two queue pairs per port (af_packet qpairs=2: the kernel's fanout hash spreads flows
# like RSS). Replies that land on the other worker's queue are handed to their owner over the
# software rings; the suite checks both workers carry connections and no reply lacks an owner.
RVS_SUITE=25-multicore RVS_WORKERS=2 RVS_SKIP_NFT=1 WRK_SECONDS=${WRK_SECONDS:-5} exec bash "$(dirname "$0")/20-fullnat.sh"
