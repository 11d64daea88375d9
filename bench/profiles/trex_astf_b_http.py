# TRex advanced-stateful (ASTF) profile for scenario b, new connections per second.
#
# Each connection is a full TCP handshake with the VIP, one HTTP-like request and response, and
# a FIN from the client (the server closes after it). TRex's client side sends to the VIP; rvsd
# FULLNATs the connection to a real server, which is TRex's server side on the other port: it sees
# connections from rvsd's local addresses and answers them, and rvsd translates the replies back.
# The same profile serves the SYN-proxy variant: enable `synproxy = true` on the service in rvsd;
# the client's handshake is then answered with SYN cookies and the real server's handshake is
# made by rvsd.
#
#   ./t-rex-64 --astf -f bench/profiles/trex_astf_b_http.py -m 100000 -d 30 -t vip=198.18.0.100
#   (-m multiplies the connection rate `cps`; read "Total-CPS" and the client/server
#    tcps_connects/tcps_closed counters; drops show as tcps_conndrops / retransmits)
#
# Port set-up (trex_cfg.yaml, docs/benchmarking.md "TRex"): both ports in L3 mode (`ip` and
# `default_gw`, not `dest_mac`). Port 0 `ip: 198.18.0.254, default_gw: 198.18.0.1`: the clients'
# gateway, which rvsd's route to 198.19.0.0/16 points at and ARPs for. Port 1 `ip: 198.18.1.11,
# default_gw: 198.18.1.1`: TRex answers ARP for its port address, so that is the one real
# server it can play (rs_first = rs_last = port 1's ip; more reals need more TRex ports or
# sub-interfaces), and the server side's replies to rvsd's local addresses go to rvsd's MAC.
# rvsd's real servers must listen on `vport` (the server template accepts on that port):
# `reals = [{ addr = "198.18.1.11:80" }]`.
#
# Tunables (-t key=value,...):
#   vip, vport      the virtual service (default 198.18.0.100:80)
#   rs_first, rs_last  the real servers' addresses, which TRex's server port must own
#                      (default 198.18.1.11 .. 198.18.1.11)
#   clients         number of client addresses from 198.19.0.1 (default 256); TRex picks the
#                   client ports, so connections in flight = cps x connection lifetime
#   resp            response body size in bytes (default 512)
import ipaddress

from trex.astf.api import *

REQUEST = (b"GET /index.html HTTP/1.1\r\nHost: rvs-bench\r\nUser-Agent: rvs-bench\r\n"
           b"Accept: */*\r\n\r\n")


def response(body):
    head = "HTTP/1.1 200 OK\r\nServer: rvs-bench\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % body
    return head.encode() + b"x" * body


class ScenarioB(object):
    def create_profile(self, vip, vport, rs_first, rs_last, clients, resp_body):
        resp = response(resp_body)

        prog_c = ASTFProgram()
        prog_c.send(REQUEST)
        prog_c.recv(len(resp))
        # The client closes first (FIN) when its program ends.

        prog_s = ASTFProgram()
        prog_s.recv(len(REQUEST))
        prog_s.send(resp)
        prog_s.wait_for_peer_close()

        # 198.19.0.1 + clients - 1 (256 clients end at 198.19.1.0, not "198.19.0.256").
        last_client = str(ipaddress.IPv4Address("198.19.0.1") + max(1, clients) - 1)
        ip_gen = ASTFIPGen(
            glob=ASTFIPGenGlobal(ip_offset="0.0.0.0"),
            dist_client=ASTFIPGenDist(ip_range=["198.19.0.1", last_client], distribution="seq"),
            # The client side connects to the VIP: a one-address server range.
            dist_server=ASTFIPGenDist(ip_range=[vip, vip], distribution="seq"),
        )
        temp_c = ASTFTCPClientTemplate(program=prog_c, ip_gen=ip_gen, port=vport, cps=1)
        # rvsd connects (from its local addresses) to the real servers on the same port.
        temp_s = ASTFTCPServerTemplate(
            program=prog_s, assoc=ASTFAssociationRule(port=vport, ip_start=rs_first, ip_end=rs_last))
        template = ASTFTemplate(client_template=temp_c, server_template=temp_s)
        return ASTFProfile(default_ip_gen=ip_gen, templates=template)

    def get_profile(self, **kwargs):
        return self.create_profile(
            vip=kwargs.get("vip", "198.18.0.100"),
            vport=int(kwargs.get("vport", 80)),
            rs_first=kwargs.get("rs_first", "198.18.1.11"),
            rs_last=kwargs.get("rs_last", "198.18.1.11"),
            clients=int(kwargs.get("clients", 256)),
            resp_body=int(kwargs.get("resp", 512)),
        )


def register():
    return ScenarioB()
