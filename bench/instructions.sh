#!/usr/bin/env bash
# bench/instructions.sh: user-space instructions per proxied request, proxer against an nginx
# reverse proxy, counted by valgrind's callgrind. Unlike req/s and CPU time on a shared 2-core
# guest, an instruction count barely moves between runs, so it shows what a change to the
# request path did to proxer's own work. It says nothing about the kernel's share (most of the
# CPU time of a small proxied request), nor about cache misses or latency.
#
# Setup as bench/proxy.sh: a 1-worker nginx backend serving /hello; proxer with one [[routes]]
# entry to it (max_idle 128); nginx with upstream keepalive 64 (1 worker, master_process off so
# callgrind sees the worker). Each runs under callgrind; wrk -t1 -c20 warms it up for 3 s, the
# counters are zeroed, wrk runs DURATION (8 s) more, and the count is divided by the requests wrk
# completed in that window.
#
#   bash bench/instructions.sh            # both rows, ~1 min; markdown table on stdout
#   ROWS=proxer bash bench/instructions.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BIN=${PROXER_BIN:-$root/build/src/app/proxer}
DURATION=${DURATION:-8}
ROWS=${ROWS:-proxer nginx}
for t in valgrind callgrind_control callgrind_annotate nginx wrk curl python3; do
  command -v "$t" >/dev/null || { echo "$t is needed (apt-get install valgrind nginx wrk curl)" >&2; exit 1; }
done
[[ -x $BIN ]] || { echo "build first: $BIN is missing" >&2; exit 1; }

pids=()
W=$(mktemp -d /tmp/instructions.XXXXXX)
chmod 711 "$W"
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

B=$(free_port)
nginx_backend "$W/backend" "$B" >/dev/null 2>&1

# run ROW: prints "instructions requests"
run() {
  local row=$1 port out pid
  port=$(free_port)
  out=$W/$row.callgrind
  if [[ $row == nginx ]]; then
    mkdir -p "$W/ng"
    cat >"$W/nginx.conf" <<X
master_process off; daemon off; worker_processes 1; pid $W/ng/nginx.pid; error_log $W/ng/error.log warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000;
 client_body_temp_path $W/ng; proxy_temp_path $W/ng; fastcgi_temp_path $W/ng; uwsgi_temp_path $W/ng; scgi_temp_path $W/ng;
 upstream backend { server 127.0.0.1:$B; keepalive 64; keepalive_requests 1000000; }
 server { listen 127.0.0.1:$port; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
X
    valgrind --tool=callgrind --callgrind-out-file="$out" nginx -c "$W/nginx.conf" >"$W/vg-$row.log" 2>&1 &
  else
    proxer_proxy_toml "$W/proxer.toml" "$port" "$B"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" gateway --config "$W/proxer.toml" \
      --token "bench-$RANDOM$RANDOM" >"$W/vg-$row.log" 2>&1 &
  fi
  pid=$!
  pids+=("$pid")
  for _ in $(seq 150); do curl -fs -m 1 "http://127.0.0.1:$port/hello" >/dev/null 2>&1 && break; sleep 0.2; done
  wrk -t1 -c20 -d3s "http://127.0.0.1:$port/hello" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  local w n
  w=$(wrk -t1 -c20 -d"${DURATION}s" "http://127.0.0.1:$port/hello")
  callgrind_control -d "$pid" >/dev/null 2>&1
  n=$(awk '/requests in/ { print $1 }' <<<"$w")
  sleep 0.5
  local f ir
  f=$(ls -t "$out"* | head -1)
  ir=$(callgrind_annotate --threshold=100 "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
  kill -TERM "$pid" 2>/dev/null || true
  echo "$ir $n"
}

echo "| row | requests | instructions | per request |"
echo "|---|---:|---:|---:|"
for row in $ROWS; do
  read -r ir n < <(run "$row")
  printf '| %s | %s | %s | %s |\n' "$row" "$n" "$ir" "$((ir / n))"
done
echo
echo "proxer: $BIN (tree at $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')); $(nginx -v 2>&1); $(valgrind --version)"
