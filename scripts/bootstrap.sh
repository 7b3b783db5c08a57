#!/usr/bin/env bash
# Installs what building netlab needs (Debian packages, needs root when something is missing; not
# the test peers: scripts/deps.sh installs everything) and builds the netlab binary into build/
# (Release, the default build type). Idempotent and quiet. A first build takes a few minutes (see
# README.md, "Building by hand").
# Usage: scripts/bootstrap.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
shift || true
"$here/scripts/deps.sh" --build
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$here" -B "$build" "${launcher[@]}" "$@" >/dev/null
targets=(netlab)
# The man pages and completions too (seconds), so that `cmake --install` works next.
grep -q '^NETLAB_DOCS:BOOL=ON' "$build/CMakeCache.txt" && targets+=(netlab_docs)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" 2>&1 | grep -E 'error|warning|Error' || true
test -x "$build/netlab" || { echo "netlab: bootstrap: build failed (see: cmake --build $build --target netlab)" >&2; exit 1; }
echo "built $build/netlab" >&2
