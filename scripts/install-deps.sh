#!/usr/bin/env bash
# Installs the Debian 12 packages proxer needs to build, test and benchmark.
# Idempotent: installs only what is missing. Needs root (or sudo) the first time.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-url1.81-dev libboost-json1.81-dev
  libssl-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
TEST_PKGS=(curl python3 python3-websockets procps iproute2 openssl wrk redis-server redis-tools tinyproxy chromium)
BENCH_PKGS=(wrk nginx openssh-server openssh-client)

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
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
