#!/usr/bin/env bash
# bench/run.sh: proxer side by side with the direct path and peers (nginx, haproxy, ssh -R, ...)
# in one run, through ../shared/bench/peers.sh (wrk at c=50 and c=1, /hello and 1 KiB, a 100 MiB
# transfer, memory). proxer is the "project" row: gateway + agent as two processes, the agent
# tunnelling to the harness's backend; wrk reaches it by Host subdomain.
#
#   bash bench/run.sh                     # all rows (needs root: apt, unshare, sshd)
#   ROWS="direct nginx ssh project" bash bench/run.sh
#
# Everything runs on loopback inside a private network namespace (see peers.sh), so the fixed
# ports below cannot clash with anything on the host.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BIN=${PROXER_BIN:-$root/build/src/app/proxer}
PEERS=${PEERS_SH:-$root/../shared/bench/peers.sh}
[[ -x $BIN ]] || { echo "build first: make build ($BIN missing)" >&2; exit 1; }
[[ -f $PEERS ]] || { echo "peer harness not found: $PEERS (set PEERS_SH)" >&2; exit 1; }

export PROJECT_NAME=proxer
export PROJECT_HOST=bench.localhost
export PROJECT_TUNNEL_CMD="
  '$BIN' gateway --listen \"\$LISTEN_ADDR\" --agent-listen 127.0.0.1:9191 \
    --admin-listen 127.0.0.1:9192 --token bench-token --log-level warn &
  '$BIN' agent --gateway tcp://127.0.0.1:9191 --token bench-token \
    --tunnel \"bench=http://\$BACKEND_ADDR\" --log-level warn &
  trap 'kill \$(jobs -p) 2>/dev/null' EXIT TERM INT   # the harness stops this shell only
  wait"
exec bash "$PEERS" "$@"
