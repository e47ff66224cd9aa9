#!/usr/bin/env bash
# bench/memory.sh: memory of the gateway and the agent (two processes) at rest and over a 1 GiB
# download and a 1 GiB upload through one tunnel (DESIGN.md §7: growth under 32 MiB for both
# together, each under 16 MiB at rest). Backend: tests/integration/backend.py (streams bytes,
# hashes uploads). Prints a markdown table. Loopback only, free ports.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BIN=${PROXER_BIN:-$root/build/src/app/proxer}
SIZE=${SIZE:-$((1 << 30))}
W=$(mktemp -d /tmp/proxer-mem.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

. "$here/lib.sh"
kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

L=$(free_port); A=$(free_port); M=$(free_port)
python3 -u "$root/tests/integration/backend.py" 0 >"$W/backend.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q BACKEND_READY "$W/backend.out" 2>/dev/null && break; sleep 0.1; done
B=$(awk '/BACKEND_READY/ { print $2 }' "$W/backend.out")
"$BIN" gateway --listen 127.0.0.1:$L --agent-listen 127.0.0.1:$A --admin-listen 127.0.0.1:$M \
  --token mem --log-level warn 2>"$W/gw.log" &
gw=$!; pids+=($gw)
"$BIN" agent --gateway tcp://127.0.0.1:$A --token mem --tunnel mem=http://127.0.0.1:$B \
  --log-level warn 2>"$W/agent.log" &
ag=$!; pids+=($ag)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$M/api/tunnels" | grep -q '"mem"' && break; sleep 0.1; done
curl -fs -o /dev/null "http://127.0.0.1:$L/t/mem/hello"   # one request: pools warm

sleep 1
gw_rest=$(kib $gw VmRSS); ag_rest=$(kib $ag VmRSS)
t0=$(date +%s.%N)
got=$(curl -fs "http://127.0.0.1:$L/t/mem/bytes?n=$SIZE&seed=1" | wc -c)
t1=$(date +%s.%N)
# -T - streams stdin (chunked); --data-binary @- would read all of it into curl's memory first.
res=$(head -c "$SIZE" /dev/zero | curl -fs -X POST -H 'Content-Type: application/octet-stream' \
  -T - "http://127.0.0.1:$L/t/mem/upload")
t2=$(date +%s.%N)
gw_hwm=$(kib $gw VmHWM); ag_hwm=$(kib $ag VmHWM)
gw_end=$(kib $gw VmRSS); ag_end=$(kib $ag VmRSS)
[[ $got == "$SIZE" ]] || { echo "download returned $got bytes, expected $SIZE" >&2; exit 1; }
echo "$res" | grep -q "\"bytes\": $SIZE" || { echo "upload: unexpected reply $res" >&2; exit 1; }

dl=$(awk -v s="$SIZE" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", s / (b - a) / 1e6 }')
ul=$(awk -v s="$SIZE" -v a="$t1" -v b="$t2" 'BEGIN { printf "%.0f", s / (b - a) / 1e6 }')
echo "| process | RSS at rest (MiB) | peak RSS over 1 GiB down + 1 GiB up (MiB) | growth (MiB) | RSS after (MiB) |"
echo "|---|---:|---:|---:|---:|"
echo "| gateway | $(mib $gw_rest) | $(mib $gw_hwm) | $(mib $((gw_hwm - gw_rest))) | $(mib $gw_end) |"
echo "| agent | $(mib $ag_rest) | $(mib $ag_hwm) | $(mib $((ag_hwm - ag_rest))) | $(mib $ag_end) |"
echo "| both | $(mib $((gw_rest + ag_rest))) | $(mib $((gw_hwm + ag_hwm))) | $(mib $((gw_hwm + ag_hwm - gw_rest - ag_rest))) | $(mib $((gw_end + ag_end))) |"
echo
echo "Transfer rates (limited by the Python backend, not a throughput figure): download $dl MB/s, upload $ul MB/s."
