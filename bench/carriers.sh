#!/usr/bin/env bash
# bench/carriers.sh: the same tunnel over each agent carrier (tcp, tls, ws, wss, poll), in one run:
# HTTP req/s at c=50 and c=1 (wrk, /hello from a 1-worker nginx backend) and a 100 MiB download
# (curl, median of 3), with the direct path as the reference. Prints a markdown table.
#
#   bash bench/carriers.sh              # DURATION=8 CARRIERS="tcp tls ws wss"
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BIN=${PROXER_BIN:-$root/build/src/app/proxer}
DURATION=${DURATION:-8}
CARRIERS=${CARRIERS:-"tcp tls ws wss poll"}
command -v nginx >/dev/null || { echo "nginx is needed as the backend" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed" >&2; exit 1; }
W=$(mktemp -d /tmp/proxer-carriers.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

. "$here/lib.sh"

B=$(free_port)
head -c $((100 << 20)) /dev/urandom >"$W/big.bin"
nginx_backend "$W" "$B" "location = /big.bin { root $W; }"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null

rps() { wrk -t1 -c"$1" -d"${DURATION}s" "$2" | awk '/Requests\/sec/ { printf "%.0f", $2 }'; }
p50() { wrk -t1 -c1 -d"${DURATION}s" --latency "$1" | awk '$1 == "50%" { print $2 }'; }
bulk() {
  local runs=()
  for _ in 1 2 3; do
    runs+=("$(curl -fs -o /dev/null -w '%{speed_download}' "$1" | awk '{ printf "%.0f", $1 / 1e6 }')")
  done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p
}

echo "| path | req/s c=50 | req/s c=1 | p50 c=1 | 100 MiB MB/s (median of 3) |"
echo "|---|---:|---:|---:|---:|"
echo "| direct | $(rps 50 "http://127.0.0.1:$B/hello") | $(rps 1 "http://127.0.0.1:$B/hello") | $(p50 "http://127.0.0.1:$B/hello") | $(bulk "http://127.0.0.1:$B/big.bin") |"

for carrier in $CARRIERS; do
  L=$(free_port); A=$(free_port); M=$(free_port)
  tls=()
  agent_tls=()
  case $carrier in
    tcp) url="tcp://127.0.0.1:$A" ;;
    tls) url="tls://localhost:$A"; tls=(--tls-cert "$W/cert.pem" --tls-key "$W/key.pem"); agent_tls=(--ca "$W/cert.pem") ;;
    ws) url="ws://127.0.0.1:$L/ws" ;;
    wss) url="wss://localhost:$A/ws"; tls=(--tls-cert "$W/cert.pem" --tls-key "$W/key.pem"); agent_tls=(--ca "$W/cert.pem") ;;
    poll) url="http://127.0.0.1:$L" ;;
  esac
  "$BIN" gateway --listen 127.0.0.1:$L --agent-listen 127.0.0.1:$A --admin-listen 127.0.0.1:$M \
    --token carriers --log-level warn "${tls[@]}" 2>"$W/gw-$carrier.log" &
  gw=$!
  sleep 0.3
  "$BIN" agent --gateway "$url" --token carriers --tunnel "b=http://127.0.0.1:$B" \
    --log-level warn "${agent_tls[@]}" 2>"$W/agent-$carrier.log" &
  ag=$!
  pids+=($gw $ag)
  u="http://127.0.0.1:$L/t/b"
  for _ in $(seq 100); do curl -fs -o /dev/null "$u/hello" && break; sleep 0.1; done
  curl -fs -o /dev/null "$u/hello" || { echo "carrier $carrier: tunnel not up" >&2; cat "$W/agent-$carrier.log" >&2; exit 1; }
  echo "| proxer over $carrier | $(rps 50 "$u/hello") | $(rps 1 "$u/hello") | $(p50 "$u/hello") | $(bulk "$u/big.bin") |"
  kill $gw $ag 2>/dev/null || true
  wait $gw $ag 2>/dev/null || true
done
