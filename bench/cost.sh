#!/usr/bin/env bash
# bench/cost.sh: CPU cost per request of each process on the tunnel path, and how busy each one is.
#
# Request rates on a shared 2-core machine swing by tens of percent between runs; the CPU time a
# process spends per request moves much less, so this is the figure to compare before and after a
# change to the hot path. It is also the measurement behind the threading choice in
# docs/ARCHITECTURE.md: it shows whether any core is left idle at c=50.
#
#   bash bench/cost.sh                 # CONNS="1 50" DURATION=8 PATHS="/hello /k1"
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BIN=${PROXER_BIN:-$root/build/src/app/proxer}
CONNS=${CONNS:-"1 50"}
DURATION=${DURATION:-8}
PATHS=${PATHS:-"/hello /k1"}
command -v nginx >/dev/null || { echo "nginx is needed as the backend (apt-get install nginx-light)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
W=$(mktemp -d /tmp/proxer-cost.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

. "$here/lib.sh"
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime

B=$(free_port); L=$(free_port); A=$(free_port); M=$(free_port)
k1=$(head -c 1023 /dev/zero | tr '\0' x)
nginx_backend "$W" "$B" "location = /k1 { return 200 \"$k1\\n\"; }"
ng=$(cat "$W/nginx.pid")
ng_worker=$(pgrep -P "$ng" | head -1)
"$BIN" gateway --listen 127.0.0.1:$L --agent-listen 127.0.0.1:$A --admin-listen 127.0.0.1:$M \
  --token cost --log-level warn 2>"$W/gw.log" &
gw=$!; pids+=($gw)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$M/api/health" && break; sleep 0.1; done
"$BIN" agent --gateway tcp://127.0.0.1:$A --token cost --tunnel "c=http://127.0.0.1:$B" \
  --log-level warn 2>"$W/agent.log" &
ag=$!; pids+=($ag)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$L/t/c/hello" && break; sleep 0.1; done

# The reference: nginx as a single-hop reverse proxy to the same backend (1 worker, upstream
# keep-alive), measured the same way.
P=$(free_port)
mkdir -p "$W/proxy"
cat >"$W/proxy/nginx.conf" <<EOF
worker_processes 1;
pid $W/proxy/nginx.pid;
error_log $W/proxy/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $W/proxy; proxy_temp_path $W/proxy; fastcgi_temp_path $W/proxy;
  uwsgi_temp_path $W/proxy; scgi_temp_path $W/proxy;
  upstream be { server 127.0.0.1:$B; keepalive 64; }
  server {
    listen 127.0.0.1:$P;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
nginx -c "$W/proxy/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 50); do [[ -s $W/proxy/nginx.pid ]] && break; sleep 0.1; done
proxy_worker=$(pgrep -P "$(cat "$W/proxy/nginx.pid")" | head -1)

hz=$(getconf CLK_TCK)
echo "| path | c | req/s | gateway µs CPU/req | agent µs CPU/req | backend µs CPU/req | gateway busy | agent busy | backend busy |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for p in $PATHS; do
  for c in $CONNS; do
    g0=$(ticks $gw); a0=$(ticks $ag); n0=$(ticks "$ng_worker")
    out=$(wrk -t1 -c"$c" -d"${DURATION}s" "http://127.0.0.1:$L/t/c$p")
    g1=$(ticks $gw); a1=$(ticks $ag); n1=$(ticks "$ng_worker")
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
    awk -v p="$p" -v c="$c" -v rps="$rps" -v r="$reqs" -v hz="$hz" -v d="$DURATION" \
      -v g=$((g1 - g0)) -v a=$((a1 - a0)) -v n=$((n1 - n0)) 'BEGIN {
        us = 1e6 / hz / r
        printf "| %s | %d | %s | %.1f | %.1f | %.1f | %.0f%% | %.0f%% | %.0f%% |\n", p, c, rps,
          g * us, a * us, n * us, 100 * g / hz / d, 100 * a / hz / d, 100 * n / hz / d }'
  done
done
echo
echo "| reference: nginx reverse proxy | c | req/s | nginx µs CPU/req | nginx busy |"
echo "|---|---:|---:|---:|---:|"
for p in $PATHS; do
  for c in $CONNS; do
    x0=$(ticks "$proxy_worker")
    out=$(wrk -t1 -c"$c" -d"${DURATION}s" "http://127.0.0.1:$P$p")
    x1=$(ticks "$proxy_worker")
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
    awk -v p="$p" -v c="$c" -v rps="$rps" -v r="$reqs" -v hz="$hz" -v d="$DURATION" \
      -v x=$((x1 - x0)) 'BEGIN {
        printf "| %s | %d | %s | %.1f | %.0f%% |\n", p, c, rps, x * 1e6 / hz / r, 100 * x / hz / d }'
  done
done
