#!/usr/bin/env bash
# Benchmarks netlab's servers against the reference implementations (issue 5), side by side on this
# machine, and writes bench/results/<stamp>[-quick].{md,json} (+ latest[-quick].{md,json}).
#
# Usage: scripts/bench.sh [--quick] [--runs N] [--duration S] [--only ws,tcp,rate,idle,udp,tftp,anchor]
#                         [--clients netlab,go] [--without KIND,...] [--tag T]
#   --quick   reduced matrix, under 2 minutes
# Steps: installs the contenders (bench/setup.sh: scripts/deps.sh --bench, valgrind, uWebSockets.js
# from npm into build-release/bench/uws), builds netlab in Release (build-release/), builds the Go
# reference servers and the Go load client (bench/tools/go-load) offline from Debian's packages and
# bench/tools/connbench, raises the open-file limit, then runs bench/bench.py. Never part of the test
# suite. See docs/benchmarks.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${NETLAB_BENCH_BUILD:-$here/build-release}

"$here/bench/setup.sh" "$build"

echo "bench: building netlab (Release) in $build" >&2
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target netlab >/dev/null

echo "bench: building reference servers and connbench" >&2
mkdir -p "$build/bench"
# Offline GOPATH build against Debian's gocode tree (golang-github-gorilla-websocket-dev).
export GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off GOCACHE="$build/bench/gocache"
for d in reference/go-ws-echo reference/go-tcp-echo reference/go-udp-echo tools/go-load; do
  src="$here/bench/$d/main.go" bin="$build/bench/$(basename "$d")"
  if [[ ! -x "$bin" || "$src" -nt "$bin" ]]; then
    (cd "$here" && go build -o "$bin" "./bench/$d")
  fi
done
if [[ ! -x "$build/bench/connbench" || "$here/bench/tools/connbench.cpp" -nt "$build/bench/connbench" ]]; then
  g++ -O2 -std=c++17 -Wall -Wextra -DASIO_STANDALONE "$here/bench/tools/connbench.cpp" \
      -o "$build/bench/connbench" -pthread
fi

# 10,000 idle connections need more than the usual 1024 descriptors on each side.
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < 10100 )); then
  echo "bench: warning: open-file limit $(ulimit -n) is too low for the 10,000-connection cell" >&2
fi

exec /usr/bin/python3 "$here/bench/bench.py" --build "$build" "$@"
