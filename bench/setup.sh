#!/usr/bin/env bash
# Installs what only the benchmarks need (issue 17), so CI's scripts/test.sh never installs it:
# the test/build packages and the Debian bench packages (scripts/deps.sh --bench: Go, gorilla,
# iperf3, linux-perf), valgrind (callgrind profiles), and uWebSockets.js from npm into a bench-local
# directory, never a dependency of netlab and never committed.
#
# Usage: bench/setup.sh BUILD_DIR     (installs into BUILD_DIR/bench/uws/node_modules/uwebsockets)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-release}

"$here/scripts/deps.sh" --bench

extra=(valgrind)
missing=()
for p in "${extra[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bench: setup: missing packages: ${missing[*]} (run as root)" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# uWebSockets.js: the npm package `uwebsockets` 3.0.6 republishes its prebuilt addons (source_commit
# b8704be9 of uWebSockets.js); Node 20 loads uws_linux_x64_115.node. No install scripts run
# (--ignore-scripts); the addon's sha256 is pinned to the one reviewed when this was written.
uws_version=3.0.6
uws_sha256=f4fa5d7b697529b45ac8aa3d57385d9af51bc1d2b26aa9f5b68ca4361542e665
uws_dir="$build/bench/uws"
addon="$uws_dir/node_modules/uwebsockets/uws_linux_x64_115.node"
if [[ ! -f "$addon" ]] || ! grep -q "\"version\": \"$uws_version\"" "$uws_dir/node_modules/uwebsockets/package.json"; then
  echo "bench: installing uwebsockets@$uws_version into $uws_dir" >&2
  mkdir -p "$uws_dir"
  npm install --prefix "$uws_dir" --no-save --ignore-scripts --no-audit --no-fund --loglevel=error \
      "uwebsockets@$uws_version" >/dev/null
fi
if [[ "$(node -p process.versions.modules)" != 115 ]]; then
  echo "bench: warning: node $(node --version) is not ABI 115 (Node 20); uws-echo may not load" >&2
fi
got=$(sha256sum "$addon" | cut -d' ' -f1)
if [[ "$got" != "$uws_sha256" ]]; then
  echo "bench: uwebsockets addon checksum $got is not the reviewed $uws_sha256; removing it" >&2
  rm -rf "$uws_dir/node_modules/uwebsockets"
  exit 1
fi
