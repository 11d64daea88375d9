# shellcheck shell=bash
# Real-server nginx for end-to-end tests: one single-process nginx in a namespace, serving port 80
# on every given address (IPv4 or IPv6: an address with a ':' is listened on as [addr]:80).
#
#   GET /     -> 200 "rs=<the address the request arrived on>\n"
#   GET /big  -> a 100 MB file of random bytes (sendfile off, so the data goes through the normal
#                socket write path)
#
# Usage (after sourcing):
#   NGINX_RS_TMP=/some/tmp/dir           # parent dir; defaults to $RVS_TMP (topo.sh), else mktemp
#   nginx_rs_start "$NS_S" "${RS[@]}"    # returns once every address answers GET / (10 s max)
#   ...
#   nginx_rs_stop                        # also safe to call from a trap when nothing was started
#
# Knobs: NGINX_RS_BIG_MB (default 100; 0 = no /big file), NGINX_RS_KEEPALIVE_REQUESTS (default
# 1000, nginx's own default; raise it to take connection setup out of a benchmark).
# NGINX_RS_PP_PORTS="81 82" (default none) adds, on every given address, listeners on those ports
# that require a PROXY protocol header (v1 or v2; `listen ... proxy_protocol`): the real client
# address from the header becomes $remote_addr for requests from NGINX_RS_PP_FROM (default the
# topology's LIP, else 0.0.0.0/0) (`set_real_ip_from`, `real_ip_header proxy_protocol`).
#   GET /     -> 200 "rs=<addr> pp=<address:port from the header> client=<$remote_addr>\n"
#   GET /big  -> the same 100 MB file
# Every request on them is logged to $NGINX_RS_DIR/pp.log: "<header's address> <server addr:port>
# <status> <request>"; a connection without a header is refused ("broken header" in error.log).
# Only one nginx per shell: the pid is kept in NGINX_RS_PID. Everything nginx writes (config,
# pid, temp dirs, error log) stays in $NGINX_RS_DIR; nothing under /etc/nginx or /var is used.

NGINX_RS_PID=
NGINX_RS_DIR=
NGINX_RS_OWN_TMP=

# _nginx_rs_host ADDR: ADDR as the host part of an address:port or a URL ([ADDR] for IPv6).
_nginx_rs_host() { case $1 in *:*) printf '[%s]' "$1" ;; *) printf '%s' "$1" ;; esac; }

nginx_rs_start() {
    local ns=$1; shift
    if [ $# -eq 0 ]; then echo "nginx_rs_start: NS ADDR..." >&2; return 2; fi
    if [ -n "$NGINX_RS_PID" ]; then echo "nginx_rs_start: already running ($NGINX_RS_PID)" >&2; return 1; fi
    local parent=${NGINX_RS_TMP:-${RVS_TMP:-}}
    if [ -z "$parent" ]; then
        parent=$(mktemp -d /tmp/nginx-rs.XXXX)
        NGINX_RS_OWN_TMP=$parent
    fi
    NGINX_RS_DIR=$(mktemp -d "$parent/nginx-rs.XXXX")
    local d=$NGINX_RS_DIR big_mb=${NGINX_RS_BIG_MB:-100} listen="" a
    mkdir -p "$d"/{body,proxy,fastcgi,uwsgi,scgi,html}
    for a in "$@"; do listen+="        listen $(_nginx_rs_host "$a"):80 backlog=4096;"$'\n'; done
    local pp_server="" pp_listen="" port
    if [ -n "${NGINX_RS_PP_PORTS:-}" ]; then
        for port in $NGINX_RS_PP_PORTS; do
            for a in "$@"; do
                pp_listen+="        listen $(_nginx_rs_host "$a"):$port proxy_protocol backlog=4096;"$'\n'
            done
        done
        pp_server="
    log_format pp '\$proxy_protocol_addr \$server_addr:\$server_port \$status \"\$request\"';
    server {
$pp_listen
        access_log $d/pp.log pp;
        set_real_ip_from ${NGINX_RS_PP_FROM:-${LIP:-0.0.0.0/0}};
        real_ip_header proxy_protocol;
        location = /big {
            root $d/html;
            sendfile off;
            default_type application/octet-stream;
        }
        location / {
            return 200 \"rs=\$server_addr pp=\$proxy_protocol_addr:\$proxy_protocol_port client=\$remote_addr\\n\";
        }
    }"
    fi
    if [ "$big_mb" -gt 0 ]; then
        head -c "${big_mb}M" /dev/urandom > "$d/html/big"
    fi
    cat > "$d/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 8192;
}
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    default_type text/plain;
    keepalive_requests ${NGINX_RS_KEEPALIVE_REQUESTS:-1000};
    server {
$listen
        location = /big {
            root $d/html;
            sendfile off;
            default_type application/octet-stream;
        }
        location / {
            return 200 "rs=\$server_addr\n";
        }
    }$pp_server
}
CONF
    # -e: the compiled-in error log is opened before the config is read; keep it in our dir too.
    ip netns exec "$ns" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf" > "$d/stdout" 2>&1 &
    NGINX_RS_PID=$!
    local i ready
    for i in $(seq 1 100); do
        ready=1
        for a in "$@"; do
            if ! ip netns exec "$ns" curl -s -m 1 -o /dev/null "http://$(_nginx_rs_host "$a")/"; then ready=; break; fi
        done
        [ -n "$ready" ] && return 0
        if ! kill -0 "$NGINX_RS_PID" 2>/dev/null; then
            echo "nginx_rs_start: nginx exited:" >&2; cat "$d/error.log" "$d/stdout" >&2 2>/dev/null
            NGINX_RS_PID=
            return 1
        fi
        sleep 0.1
    done
    echo "nginx_rs_start: not answering on all of $* after 10 s" >&2
    cat "$d/error.log" >&2 2>/dev/null
    nginx_rs_stop
    return 1
}

# nginx_rs_stop: stop nginx (SIGQUIT, then SIGKILL after 3 s) and delete its directory.
nginx_rs_stop() {
    if [ -n "$NGINX_RS_PID" ]; then
        kill -QUIT "$NGINX_RS_PID" 2>/dev/null
        local i
        for i in $(seq 1 30); do kill -0 "$NGINX_RS_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$NGINX_RS_PID" 2>/dev/null
        wait "$NGINX_RS_PID" 2>/dev/null
        NGINX_RS_PID=
    fi
    if [ -z "${RVS_KEEP_TMP:-}" ]; then
        [ -n "$NGINX_RS_DIR" ] && rm -rf "$NGINX_RS_DIR"
        [ -n "$NGINX_RS_OWN_TMP" ] && rm -rf "$NGINX_RS_OWN_TMP"
    fi
    NGINX_RS_DIR=
    NGINX_RS_OWN_TMP=
    return 0
}
