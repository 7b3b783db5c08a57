#!/usr/bin/env bash
# Installs every build and test dependency (Debian packages, needs root when something is missing)
# and builds netlab into build/ (Release with debug info). Idempotent and quiet.
# Usage: scripts/bootstrap.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
shift || true
"$here/scripts/deps.sh"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" 2>&1 | grep -E 'error|warning|Error' || true
test -x "$build/netlab" || { echo "netlab: bootstrap: build failed (see: cmake --build $build)" >&2; exit 1; }
echo "built $build/netlab" >&2
