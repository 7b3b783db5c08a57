#!/usr/bin/env bash
# Installs every build and test dependency from Debian's packages (idempotent, quiet).
# Usage: scripts/deps.sh [--build] [--bench]
#   (none)    everything scripts/test.sh needs: build, packaging, test peers, sanitizers
#   --build   only what building netlab needs (scripts/bootstrap.sh and scripts/demo.sh)
#   --bench   adds the benchmark contenders
set -euo pipefail

build_pkgs=(cmake g++ make pkg-config libasio-dev libwebsocketpp-dev libcli11-dev libspdlog-dev
            catch2 nlohmann-json3-dev libssl-dev zlib1g-dev)
# cpack -G DEB: dpkg-shlibdeps (dpkg-dev) and file(1), which CPack's DEB generator runs on each file.
package_pkgs=(dpkg-dev file)
# scripts/test.sh's fuzz (libFuzzer) and ThreadSanitizer stages.
sanitizer_pkgs=(clang-14 libclang-rt-14-dev)
test_pkgs=(socat ncat netcat-openbsd python3 python3-websockets nodejs node-ws curl
           tftp-hpa tftpd-hpa atftp openssl procps chromium tmux
           man-db zsh      # test_packaging: renders the man pages, runs the zsh completion
           python3-jsonschema  # test_json_events: --json output against docs/events.schema.json
           iproute2 util-linux)  # udp broadcast/multicast tests in a private network namespace
bench_pkgs=(golang-go golang-github-gorilla-websocket-dev iperf3 linux-perf)

want=("${build_pkgs[@]}" "${package_pkgs[@]}" "${test_pkgs[@]}" "${sanitizer_pkgs[@]}")
for arg in "$@"; do
  case $arg in
    --build) want=("${build_pkgs[@]}") ;;
    --bench) bench=1 ;;
    *) echo "netlab: deps: unknown option '$arg' (usage: $0 [--build] [--bench])" >&2; exit 2 ;;
  esac
done
((${bench:-0})) && want+=("${bench_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "netlab: deps: missing packages: ${missing[*]} (run as root: sudo $0)" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}" >&2
  # tftpd-hpa's package would start a system service on port 69; tests run their own copy.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
