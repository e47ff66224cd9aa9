#!/usr/bin/env bash
# Installs the Debian 12 packages proxer needs to build, test and benchmark.
# Idempotent: installs only what is missing. Needs root (or sudo) the first time.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-url1.81-dev libboost-json1.81-dev
  libssl-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libc-ares-dev libmimalloc-dev
)
TEST_PKGS=(curl python3 python3-websockets procps iproute2 openssl wrk redis-server redis-tools tinyproxy chromium nginx dnsmasq etcd-server)
BENCH_PKGS=(wrk nginx haproxy linux-perf valgrind openssh-server openssh-client)

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
[[ ${1:-} == --bench ]] && want+=("${BENCH_PKGS[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

SUDO=""
[[ $(id -u) == 0 ]] || SUDO=sudo
echo "installing: ${missing[*]}" >&2
# Packages such as nginx, redis-server and tinyproxy start a system service when installed. The
# tests run their own instances on free ports, so keep the services from starting (and from
# failing on a busy port 80): policy-rc.d is Debian's switch for that, removed again afterwards.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
