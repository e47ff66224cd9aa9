#!/usr/bin/env bash
# bench/proxy.sh: proxer as a plain single-hop reverse proxy (a [[routes]] entry to a direct
# http:// cluster, no tunnel) against nginx and haproxy doing the same job, in one run.
#
#   rows      what wrk loads
#   direct    the backend itself: nginx, 1 worker, /hello (13 bytes) and /1k (1024 bytes)
#   nginx     nginx reverse proxy, 1 worker, upstream keepalive 64
#   haproxy   haproxy, nbthread 1, mode http, http-reuse always
#   proxer    `proxer gateway --config` with one route to the backend (max_idle 128)
#
# Measurements, each over all rows back to back so machine noise hits every row alike:
# wrk -t1 -c50 -d10s on /hello (two rounds, the second in reverse row order), on /1k, then
# c=1 on /hello and /1k. For each run the CPU time (utime + stime from /proc/PID/stat) of the
# proxy process and of the backend's worker is divided by the requests wrk completed: on a
# 2-core machine where wrk, the proxy and the backend share the cores, CPU per request is the
# fairer figure; req/s mostly says who got the cores.
#
#   bash bench/proxy.sh                 # as root: private network namespace (unshare --net)
#   NETNS=0 bash bench/proxy.sh         # stay in the host network namespace (loopback only)
#   DURATION=10s CONNS=50 ROWS="direct nginx haproxy proxer" PERF=1 bash bench/proxy.sh
#   PAIRS=7 DURATION=5s ROWS="nginx haproxy proxer" bash bench/proxy.sh   # rounds, see below
#
# PAIRS=N replaces the measurements below with N rounds of c=CONNS on PAIRS_PATH (/hello, or
# /1k), each round running every row once, back to back (odd rounds in row order, even rounds
# reversed), and prints each round's req/s and user/system CPU per request with every row's
# ratio to nginx in that round, then the median ratio over the rounds. On a noisy guest the hypervisor can slow one process
# for seconds; short alternating rounds spread that over all rows, and the median of ratios
# taken within a round is steadier than any one long run.
#
# PERF=1 adds, after the tables, one 8 s c=50 /hello run per proxy under `perf record` and
# `perf stat` (needs perf: apt-get install linux-perf): each proxy's CPU per request split into
# kernel / program / libc, system calls per request, and proxer's top symbols.
# A "noise" table gives, per run, the CPU the rest of the machine used meanwhile (other users'
# builds and tests); it cannot see the hypervisor, so compare rows within a measurement.
# About 4 minutes with the defaults (4.5 with PERF=1); markdown on stdout, progress on stderr;
# raw wrk output, configs and perf data are kept in RAW_DIR (default: a new /tmp/proxy-raw.*).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
SELF="$here/$(basename "$0")"
BIN=${PROXER_BIN:-$root/build/src/app/proxer}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
ROWS=${ROWS:-direct nginx haproxy proxer}
PERF=${PERF:-0}
PAIRS=${PAIRS:-0}
PAIRS_PATH=${PAIRS_PATH:-/hello}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -x $BIN ]] || die "build first: cmake --build build -j2 --target proxer ($BIN missing)"
for t in nginx haproxy wrk curl python3; do
  command -v "$t" >/dev/null || die "$t is needed (apt-get install nginx-light haproxy wrk curl)"
done

# Private network namespace with only `lo` when we can (root); else the host's, loopback only.
if [[ -z ${PROXY_INNER:-} ]]; then
  if [[ ${NETNS:-1} == 1 && $(id -u) == 0 ]] && unshare --net true 2>/dev/null; then
    exec unshare --net env PROXY_INNER=netns bash "$SELF" "$@"
  fi
  log "note: running in the host network namespace (NETNS=0, not root, or unshare unavailable)"
  export PROXY_INNER=host
fi
[[ $PROXY_INNER == netns ]] && ip link set lo up

# --- processes and cleanup ----------------------------------------------------
pids=()     # every process started here (lib.sh's nginx_backend appends to it too)
workers=()  # nginx workers: they leave with their master; killed here only if one did not
W=$(mktemp -d /tmp/proxy-bench.XXXXXX)
chmod 711 "$W"
RAW=${RAW_DIR:-$(mktemp -d /tmp/proxy-raw.XXXXXX)}
mkdir -p "$RAW"
cleanup() {
  local p
  # shellcheck disable=SC2046
  kill $(jobs -p) 2>/dev/null || true            # a wrk or perf still running, if interrupted
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 20); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break; sleep 0.1
  done
  for p in "${pids[@]}" "${workers[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  cp "$W"/*.log "$W"/*.conf "$W"/*.cfg "$W"/*.toml "$RAW/" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# shellcheck source=bench/lib.sh
. "$here/lib.sh"

# --- backend and rows -----------------------------------------------------------
declare -A PORT=() PROC=()   # row -> listening port, PID whose CPU time is the row's cost
k1=$(head -c 1023 /dev/zero | tr '\0' x)
PORT[direct]=$(free_port)
nginx_backend "$W/backend" "${PORT[direct]}" "location = /1k { return 200 \"$k1\\n\"; }"
backend_worker=$(pgrep -P "$(cat "$W/backend/nginx.pid")" | head -1)
PROC[direct]=$backend_worker; workers+=("$backend_worker")
B=${PORT[direct]}

start_nginx() {
  local p; p=$(free_port); PORT[nginx]=$p
  mkdir -p "$W/nginx"
  cat >"$W/nginx.conf" <<EOF
worker_processes 1;
pid $W/nginx/nginx.pid;
error_log $W/nginx.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $W/nginx; proxy_temp_path $W/nginx; fastcgi_temp_path $W/nginx;
  uwsgi_temp_path $W/nginx; scgi_temp_path $W/nginx;
  upstream backend { server 127.0.0.1:$B; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$p;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  nginx -c "$W/nginx.conf" -g 'daemon off;' >>"$W/nginx.log" 2>&1 </dev/null &
  pids+=($!)
  for _ in $(seq 50); do [[ -s $W/nginx/nginx.pid ]] && break; sleep 0.1; done
  for _ in $(seq 50); do PROC[nginx]=$(pgrep -P "$(cat "$W/nginx/nginx.pid")" | head -1) && break; sleep 0.1; done
  workers+=("${PROC[nginx]}")
}

start_haproxy() {
  local p; p=$(free_port); PORT[haproxy]=$p
  cat >"$W/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:$p
  default_backend be
backend be
  server s1 127.0.0.1:$B
EOF
  haproxy -db -f "$W/haproxy.cfg" >"$W/haproxy.log" 2>&1 </dev/null &
  pids+=($!); PROC[haproxy]=$!
}

start_proxer() {
  local p; p=$(free_port); PORT[proxer]=$p
  proxer_proxy_toml "$W/proxer.toml" "$p" "$B"
  # A token keeps the (unused) agent listener closed to strangers; without one it only warns.
  "$BIN" gateway --config "$W/proxer.toml" --token "bench-$RANDOM$RANDOM" \
    >"$W/proxer.log" 2>&1 </dev/null &
  pids+=($!); PROC[proxer]=$!
}

# wait_row ROW: until GET /hello through the row answers "Hello, world" (20 s)
wait_row() {
  local deadline=$((SECONDS + 20))
  while ((SECONDS < deadline)); do
    curl -fs -m 2 "http://127.0.0.1:${PORT[$1]}/hello" 2>/dev/null | grep -q '^Hello, world$' && return 0
    sleep 0.1
  done
  return 1
}

LIVE=()
for row in $ROWS; do
  case $row in
    direct) ;;
    nginx|haproxy|proxer) "start_$row" ;;
    *) die "unknown row: $row" ;;
  esac
  wait_row "$row" || die "$row did not answer GET /hello: $(tail -3 "$W/$row.log" 2>/dev/null)"
  curl -fs "http://127.0.0.1:${PORT[$row]}/1k" | cmp -s - <(printf '%s\n' "$k1") \
    || die "$row: /1k body differs"
  LIVE+=("$row")
done
REV=(); for ((i = ${#LIVE[@]} - 1; i >= 0; i--)); do REV+=("${LIVE[$i]}"); done
log "rows: ${LIVE[*]} (network namespace: $PROXY_INNER; raw output: $RAW)"
log "proxer: pid ${PROC[proxer]:-none}, threads: $(awk '/^Threads:/ { print $2 }' "/proc/${PROC[proxer]:-self}/status" 2>/dev/null)"

# --- measuring -------------------------------------------------------------------
hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime, whole process
uticks() { awk '{ print $14 }' "/proc/$1/stat"; }         # utime alone
# Busy time of all CPUs: user, nice, system, irq, softirq, steal. Softirq counts because a
# process's own stime includes the loopback softirq work done in its context, which /proc/stat
# files under softirq.
sys_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
child_ticks() {   # CPU time of this shell's finished children (wrk), in ticks, into CT
  times >"$W/times"   # not in $(...): a subshell starts with zero children's time
  CT=$(awk -v hz="$hz" 'NR == 2 { t = 0
    for (i = 1; i <= 2; i++) { split($i, a, /m|s/); t += a[1] * 60 + a[2] }
    printf "%d", t * hz + 0.5 }' "$W/times")
}
to_us() {   # wrk duration (639.00us, 2.64ms, 1.15s) -> integer microseconds
  awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0
    if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000
    else f = -1
    if (f < 0 || v == "") print "?"; else printf "%d", n * f + 0.5 }'
}
declare -A R=()   # R[key.field,row]

# wrk_run KEY ROW PATH CONNS: one wrk run; req/s, p50/p99 (µs), errors, CPU µs/req, busy %
wrk_run() {
  local key=$1 row=$2 path=$3 c=$4 out="$RAW/$1.$2.txt" x0 x1 b0 b1 t0 t1 w0 w1 s0 s1 reqs
  sleep 1   # let the previous run's connections drain
  local u0 u1
  x0=$(ticks "${PROC[$row]}"); u0=$(uticks "${PROC[$row]}"); b0=$(ticks "$backend_worker")
  t0=$EPOCHREALTIME
  child_ticks; w0=$CT; s0=$(sys_ticks)
  timeout 60 wrk -t1 -c"$c" -d"$DURATION" --timeout 5s --latency \
    "http://127.0.0.1:${PORT[$row]}$path" >"$out" 2>&1 || true
  s1=$(sys_ticks); child_ticks; w1=$CT
  x1=$(ticks "${PROC[$row]}"); u1=$(uticks "${PROC[$row]}"); b1=$(ticks "$backend_worker")
  t1=$EPOCHREALTIME
  # CPU the rest of the machine used meanwhile (other users' builds, tests...), % of one core:
  # the noise this run suffered. Our processes: the proxy, the backend worker, wrk.
  local ours=$(((x1 - x0) + (w1 - w0))); [[ $row == direct ]] || ours=$((ours + b1 - b0))
  R[$key.other,$row]=$(awk -v o=$((s1 - s0 - ours)) -v hz="$hz" -v t0="$t0" -v t1="$t1" \
    'BEGIN { v = 100 * o / hz / (t1 - t0); printf "%d", v < 0 ? 0 : v + 0.5 }')
  reqs=$(awk '/requests in/ { print $1 }' "$out")
  R[$key.rps,$row]=$(awk '/^Requests\/sec:/ { printf "%d", $2 + 0.5 }' "$out")
  R[$key.p50,$row]=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
  R[$key.p99,$row]=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
  R[$key.err,$row]=$(awk '/Socket errors:/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
                          /Non-2xx or 3xx/ { e += $5 } END { print e + 0 }' "$out")
  read -r "R[$key.cpu,$row]" "R[$key.bcpu,$row]" "R[$key.busy,$row]" < <(awk -v r="${reqs:-0}" \
    -v hz="$hz" -v x=$((x1 - x0)) -v b=$((b1 - b0)) -v t0="$t0" -v t1="$t1" 'BEGIN {
      if (r == 0) { print "- - -"; exit }
      printf "%.1f %.1f %.0f\n", x * 1e6 / hz / r, b * 1e6 / hz / r, 100 * x / hz / (t1 - t0) }')
  R[$key.ucpu,$row]=$(awk -v r="${reqs:-0}" -v hz="$hz" -v u=$((u1 - u0)) \
    'BEGIN { if (r == 0) print "-"; else printf "%.1f", u * 1e6 / hz / r }')
  echo "ticks proxy=$((x1 - x0)) backend=$((b1 - b0)) wrk=$((w1 - w0)) machine=$((s1 - s0)) hz=$hz wall=$t0..$t1" >>"$out"
  log "  $key $row: ${R[$key.rps,$row]:-?} req/s p50 ${R[$key.p50,$row]}us p99 ${R[$key.p99,$row]}us err ${R[$key.err,$row]} cpu/req ${R[$key.cpu,$row]}us (backend ${R[$key.bcpu,$row]}us) busy ${R[$key.busy,$row]}% other load ${R[$key.other,$row]}%"
}

for row in "${LIVE[@]}"; do   # warm-up: upstream pools, page cache, branch predictors
  wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:${PORT[$row]}/hello" >/dev/null 2>&1 || true
  wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:${PORT[$row]}/1k" >/dev/null 2>&1 || true
done

# --- PAIRS=N: alternating short rounds, ratios within each round -----------------------
# --- report helpers ---------------------------------------------------------------------------
calc() { awk -v op="$1" -v a="${2:-}" -v b="${3:-}" 'BEGIN {
  if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || (op != "minus" && b == 0)) { print "-"; exit }
  if (op == "minus") printf "%+d", a - b; else printf "%.2f", a / b }'; }
ratio() { calc ratio "$@"; }
minus() { calc minus "$@"; }
has() { [[ " ${LIVE[*]} " == *" $1 "* ]]; }
ref=nginx; has nginx || ref=${LIVE[0]}
versions() {
  echo "Versions: $(nginx -v 2>&1 | sed 's/.*version: //'), $(haproxy -v 2>/dev/null | awk 'NR == 1 { print "haproxy " $3 }'), $(wrk -v 2>&1 | awk 'NR == 1 { print "wrk " $2 }'), proxer $BIN (tree at $(cd "$root" && git log -1 --format=%h 2>/dev/null || echo '?'), binary built $(date -u -r "$BIN" +%FT%TZ))"
}

if ((PAIRS > 0)); then
  for ((i = 1; i <= PAIRS; i++)); do
    log "round $i of $PAIRS: $PAIRS_PATH c=$CONNS"
    if ((i % 2)); then order=("${LIVE[@]}"); else order=("${REV[@]}"); fi
    for row in "${order[@]}"; do wrk_run "p$i" "$row" "$PAIRS_PATH" "$CONNS"; done
  done
  # ratios FIELD ROW: ROW's FIELD over ref's in each round that has both, one a line, ascending
  ratios() {
    local i
    for ((i = 1; i <= PAIRS; i++)); do ratio "${R[p$i.$1,$2]}" "${R[p$i.$1,$ref]}"; echo; done |
      grep -v '^-' | sort -g
  }
  median() { awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
    if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
  echo
  echo "### $(date -u +%F) · $(nproc) cores · $PAIRS rounds of wrk -t1 -c$CONNS -d$DURATION $PAIRS_PATH · network namespace: $PROXY_INNER"
  echo
  echo "Per round and row: req/s, the proxy's user and system CPU per request (µs), and req/s"
  echo "relative to $ref in the same round. Odd rounds ran the rows in order, even rounds reversed."
  echo
  head="| round |"; sep="|---:|"
  for row in "${LIVE[@]}"; do
    head+=" $row req/s | user | sys |"; sep+="---:|---:|---:|"
    [[ $row == "$ref" ]] || { head+=" x $ref |"; sep+="---:|"; }
  done
  head+=" other load |"; sep+="---:|"
  echo "$head"; echo "$sep"
  for ((i = 1; i <= PAIRS; i++)); do
    line="| $i |"; worst=0
    for row in "${LIVE[@]}"; do
      line+=" ${R[p$i.rps,$row]} | ${R[p$i.ucpu,$row]} | $(awk -v c="${R[p$i.cpu,$row]}" -v u="${R[p$i.ucpu,$row]}" 'BEGIN { if (c ~ /^[0-9.]+$/ && u ~ /^[0-9.]+$/) printf "%.1f", c - u; else print "-" }') |"
      [[ $row == "$ref" ]] || line+=" $(ratio "${R[p$i.rps,$row]}" "${R[p$i.rps,$ref]}") |"
      ((${R[p$i.other,$row]:-0} > worst)) && worst=${R[p$i.other,$row]}
    done
    echo "$line ≤$worst% |"
  done
  echo
  for row in "${LIVE[@]}"; do
    [[ $row == "$ref" ]] && continue
    all=$(ratios rps "$row")
    rps=$(median <<<"$all"); lo=$(head -1 <<<"$all"); hi=$(tail -1 <<<"$all")
    cpu=$(ratios cpu "$row" | median)
    usr=$(ratios ucpu "$row" | median)
    e=0; for ((i = 1; i <= PAIRS; i++)); do e=$((e + ${R[p$i.err,$row]:-0})); done
    echo "- $row / $ref: req/s median **${rps}x** (range $lo-$hi), CPU per request median ${cpu}x (user ${usr}x), errors $e"
  done
  echo
  versions
  echo
  echo "Raw wrk output: $RAW"
  exit 0
fi

log "/hello c=$CONNS, round 1"; for row in "${LIVE[@]}"; do wrk_run h50a "$row" /hello "$CONNS"; done
log "/1k c=$CONNS";             for row in "${LIVE[@]}"; do wrk_run k50 "$row" /1k "$CONNS"; done
log "/hello c=1";               for row in "${LIVE[@]}"; do wrk_run h1 "$row" /hello 1; done
log "/1k c=1";                  for row in "${LIVE[@]}"; do wrk_run k1 "$row" /1k 1; done
log "/hello c=$CONNS, round 2 (reverse order)"
for row in "${REV[@]}"; do wrk_run h50b "$row" /hello "$CONNS"; done

# --- report ------------------------------------------------------------------------
errs() { local e=0 k; for k in h50a h50b k50 h1 k1; do e=$((e + ${R[$k.err,$1]:-0})); done; echo "$e"; }

echo
echo "### $(date -u +%F) · $(nproc) cores · wrk -t1 -d$DURATION · backend nginx 1 worker · network namespace: $PROXY_INNER"
echo
echo "Throughput at c=$CONNS: req/s, p50 and p99 latency (µs), and the proxy process's CPU time per"
echo "request (µs, user + system; for *direct* the backend worker's). /hello round 2 ran in reverse"
echo "row order at the end of the run. \"x $ref\": req/s relative to $ref in the same round."
echo
echo "| row | /hello r1 req/s | p50 | p99 | x $ref | /hello r2 req/s | p50 | p99 | x $ref | /1k req/s | p50 | p99 | x $ref | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${LIVE[@]}"; do
  echo "| $row | ${R[h50a.rps,$row]} | ${R[h50a.p50,$row]} | ${R[h50a.p99,$row]} | $(ratio "${R[h50a.rps,$row]}" "${R[h50a.rps,$ref]}") | ${R[h50b.rps,$row]} | ${R[h50b.p50,$row]} | ${R[h50b.p99,$row]} | $(ratio "${R[h50b.rps,$row]}" "${R[h50b.rps,$ref]}") | ${R[k50.rps,$row]} | ${R[k50.p50,$row]} | ${R[k50.p99,$row]} | $(ratio "${R[k50.rps,$row]}" "${R[k50.rps,$ref]}") | $(errs "$row") |"
done
echo
echo "CPU per request (µs) of the proxy process, its busy share of one core, the backend worker's"
echo "CPU per request in the same run, and the proxy's CPU/request relative to $ref."
echo
echo "| row | /hello c=$CONNS r1 µs/req | busy | r2 µs/req | busy | /1k c=$CONNS µs/req | busy | /hello c=1 µs/req | /1k c=1 µs/req | backend µs/req (/hello r1) | x $ref (/hello r1 / r2 / 1k) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for row in "${LIVE[@]}"; do
  echo "| $row | ${R[h50a.cpu,$row]} | ${R[h50a.busy,$row]}% | ${R[h50b.cpu,$row]} | ${R[h50b.busy,$row]}% | ${R[k50.cpu,$row]} | ${R[k50.busy,$row]}% | ${R[h1.cpu,$row]} | ${R[k1.cpu,$row]} | ${R[h50a.bcpu,$row]} | $(ratio "${R[h50a.cpu,$row]}" "${R[h50a.cpu,$ref]}") / $(ratio "${R[h50b.cpu,$row]}" "${R[h50b.cpu,$ref]}") / $(ratio "${R[k50.cpu,$row]}" "${R[k50.cpu,$ref]}") |"
done
echo
echo "Latency at c=1 (µs): p50 and p99, and what the row adds to direct's."
echo
echo "| row | /hello c=1 req/s | p50 | p99 | +p50 | +p99 | /1k c=1 req/s | p50 | p99 | +p50 | +p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${LIVE[@]}"; do
  echo "| $row | ${R[h1.rps,$row]} | ${R[h1.p50,$row]} | ${R[h1.p99,$row]} | $(minus "${R[h1.p50,$row]}" "${R[h1.p50,direct]:-}") | $(minus "${R[h1.p99,$row]}" "${R[h1.p99,direct]:-}") | ${R[k1.rps,$row]} | ${R[k1.p50,$row]} | ${R[k1.p99,$row]} | $(minus "${R[k1.p50,$row]}" "${R[k1.p50,direct]:-}") | $(minus "${R[k1.p99,$row]}" "${R[k1.p99,direct]:-}") |"
done
echo
echo "Noise: CPU the rest of the machine used during each run (% of one core: busy time in /proc/stat"
echo "minus the proxy, the backend worker and wrk; accounting differences leave a few % either way)."
echo "Above ~15%, distrust that run."
echo
echo "| row | /hello r1 | /hello r2 | /1k | /hello c=1 | /1k c=1 |"
echo "|---|---:|---:|---:|---:|---:|"
for row in "${LIVE[@]}"; do
  echo "| $row | ${R[h50a.other,$row]}% | ${R[h50b.other,$row]}% | ${R[k50.other,$row]}% | ${R[h1.other,$row]}% | ${R[k1.other,$row]}% |"
done
echo
versions
echo
echo "Raw wrk output: $RAW"

# --- optional profile ------------------------------------------------------------------
# PERF=1: each proxy once more at c=$CONNS on /hello (8 s) under `perf record` (user + kernel
# samples of that process only) and `perf stat` (system calls): where its CPU per request goes.
if [[ $PERF == 1 ]]; then
  command -v perf >/dev/null || die "PERF=1 but perf is not installed (apt-get install linux-perf)"
  declare -A PF=()
  for row in "${LIVE[@]}"; do
    [[ $row == direct ]] && continue
    log "perf: $row under wrk c=$CONNS /hello"
    pid=${PROC[$row]}; data="$RAW/$row.perf.data"
    sleep 1
    perf record -q -F 999 -g -p "$pid" -o "$data" -- sleep 8 >/dev/null 2>&1 &
    rec=$!
    perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -o "$RAW/$row.perf.stat" -- sleep 8 \
      >/dev/null 2>&1 &
    stat=$!
    x0=$(ticks "$pid")
    wrk -t1 -c"$CONNS" -d8s "http://127.0.0.1:${PORT[$row]}/hello" >"$RAW/perf.$row.wrk.txt" 2>&1 || true
    x1=$(ticks "$pid")
    wait "$rec" "$stat" || true
    reqs=$(awk '/requests in/ { print $1 }' "$RAW/perf.$row.wrk.txt")
    # share of samples in the kernel, in the program itself, in libc (malloc, syscall stubs...)
    read -r kpct ppct lpct < <(perf report -i "$data" --no-children --sort dso --stdio -g none \
      2>/dev/null | awk '/^#/ || NF < 2 { next } { v = $1; sub(/%/, "", v)
        if ($2 ~ /kernel/) k += v; else if ($2 ~ /^libc/) l += v; else p += v }
        END { printf "%.1f %.1f %.1f\n", k, p, l }')
    sc=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$RAW/$row.perf.stat")
    PF[$row]=$(awk -v r="${reqs:-0}" -v hz="$hz" -v x=$((x1 - x0)) -v k="$kpct" -v p="$ppct" \
      -v l="$lpct" -v sc="${sc:-0}" -v rps="$(awk '/^Requests\/sec:/ { printf "%d", $2 }' "$RAW/perf.$row.wrk.txt")" 'BEGIN {
        if (r == 0) { print "| - | - | - | - | - | - |"; exit }
        c = x * 1e6 / hz / r; t = k + p + l; if (t == 0) t = 100
        printf "| %d | %.1f | %.1f | %.1f | %.1f | %.2f |", rps, c, c * k / t, c * p / t, c * l / t, sc / r }')
  done
  echo
  echo "Profile (PERF=1): each proxy under wrk c=$CONNS /hello for 8 s with perf attached (so a"
  echo "little slower); its CPU per request split by where perf's samples fell, and system calls"
  echo "per request (perf stat raw_syscalls:sys_enter)."
  echo
  echo "| row | req/s | CPU µs/req | kernel | program | libc | syscalls/req |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for row in "${LIVE[@]}"; do [[ -n ${PF[$row]:-} ]] && echo "| $row ${PF[$row]}"; done
  if has proxer; then
    echo
    echo "proxer's top symbols (self time, % of its samples):"
    echo
    echo '```'
    perf report -i "$RAW/proxer.perf.data" --no-children --sort sym --stdio -g none 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | cut -c1-140 | head -30
    echo '```'
  fi
fi
