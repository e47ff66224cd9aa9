#!/usr/bin/env bash
# bench/scale.sh: two scale targets of DESIGN.md §7 on loopback, as a benchmark (not a test).
#
#   1. Gateway memory per idle agent session: RSS of the gateway before and after N agents
#      (separate processes, one tunnel each) connect, register and sit idle; the delta / N.
#   2. 10,000 concurrent client connections through one tunnel: wrk with CONNS connections
#      against a tunnel whose backend is nginx (or backend.py if nginx is absent); errors counted.
#
#   bash bench/scale.sh                 # AGENTS=200 CONNS=10000 DURATION=15s
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BIN=${PROXER_BIN:-$root/build/src/app/proxer}
AGENTS=${AGENTS:-200}
CONNS=${CONNS:-10000}
DURATION=${DURATION:-15s}
W=$(mktemp -d /tmp/proxer-scale.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

. "$here/lib.sh"
kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
tunnels() { curl -fs "http://127.0.0.1:$M/api/tunnels" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["tunnels"]))'; }

L=$(free_port); A=$(free_port); M=$(free_port)
"$BIN" gateway --listen 127.0.0.1:$L --agent-listen 127.0.0.1:$A --admin-listen 127.0.0.1:$M \
  --token scale --log-level warn 2>"$W/gw.log" &
gw=$!; pids+=($gw)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$M/api/health" && break; sleep 0.1; done

# --- 1. idle sessions -------------------------------------------------------------------------
# One agent first, so that one-time allocations (logger, first session's code paths) are not
# charged to the others.
"$BIN" agent --gateway tcp://127.0.0.1:$A --token scale --tunnel warm=http://127.0.0.1:1 \
  --log-level warn 2>"$W/warm.log" &
pids+=($!)
for _ in $(seq 100); do [[ $(tunnels) == 1 ]] && break; sleep 0.1; done
sleep 1
before=$(kib $gw VmRSS)
for i in $(seq "$AGENTS"); do
  "$BIN" agent --gateway tcp://127.0.0.1:$A --token scale --tunnel "idle$i=http://127.0.0.1:1" \
    --log-level warn 2>>"$W/agents.log" &
  pids+=($!)
done
for _ in $(seq 600); do [[ $(tunnels) == $((AGENTS + 1)) ]] && break; sleep 0.1; done
n=$(tunnels)
[[ $n == $((AGENTS + 1)) ]] || { echo "only $n of $((AGENTS + 1)) tunnels registered" >&2; exit 1; }
sleep 3  # a few heartbeats go by
after=$(kib $gw VmRSS)
per=$(awk -v a="$after" -v b="$before" -v n="$AGENTS" 'BEGIN { printf "%.1f", (a - b) / n }')
echo "| measurement | value |"
echo "|---|---:|"
echo "| idle agent sessions | $AGENTS |"
echo "| gateway RSS before / after (KiB) | $before / $after |"
echo "| gateway memory per idle session (KiB) | $per |"

# --- 2. many concurrent client connections ------------------------------------------------------
B=$(free_port)
if command -v nginx >/dev/null; then
  NGINX_CONNECTIONS=20000 nginx_backend "$W/nginx" "$B"
  backend=nginx
else
  python3 -u "$root/tests/integration/backend.py" "$B" >"$W/backend.out" 2>&1 &
  pids+=($!)
  backend=backend.py
fi
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$B/hello" && break; sleep 0.1; done
"$BIN" agent --gateway tcp://127.0.0.1:$A --token scale --tunnel "many=http://127.0.0.1:$B" \
  --log-level warn 2>"$W/many.log" &
pids+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$L/t/many/hello" && break; sleep 0.1; done
wrk -t2 -c"$CONNS" -d"$DURATION" --timeout 10s "http://127.0.0.1:$L/t/many/hello" >"$W/wrk.txt" 2>&1 || true
rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' "$W/wrk.txt")
errs=$(awk '/Socket errors/ { gsub(",", ""); print "connect " $4 ", read " $6 ", write " $8 ", timeout " $10 }' "$W/wrk.txt")
non2xx=$(awk '/Non-2xx/ { print $NF }' "$W/wrk.txt")
open=$(ls /proc/$gw/fd | wc -l)
echo "| concurrent client connections (wrk -c, backend $backend) | $CONNS |"
echo "| req/s | ${rps:-?} |"
echo "| socket errors | ${errs:-none} |"
echo "| non-2xx responses | ${non2xx:-0} |"
echo "| gateway peak RSS (KiB) | $(kib $gw VmHWM) |"
echo "| gateway fds after the run | $open |"
echo
echo "wrk output:"
sed 's/^/    /' "$W/wrk.txt"
