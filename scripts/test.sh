#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite (unit + CLI + end to end),
# then builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs the whole suite once
# more, failing on any sanitizer report.
# Usage: scripts/test.sh [--no-sanitize] [ctest -R regex]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sanitize=1
if [[ "${1:-}" == "--no-sanitize" ]]; then sanitize=0; shift; fi
filter=()
[[ $# -gt 0 ]] && filter=(-R "$1")
jobs=$(nproc)

run_suite() {  # $1 = build dir, $2 = label
  echo "== $2: build" >&2
  if ! cmake --build "$1" -j"$jobs" >"$1/build.log" 2>&1; then
    grep -E -A3 'error' "$1/build.log" | head -n 60 >&2
    echo "netlab: test: $2 build failed (full log: $1/build.log)" >&2
    return 1
  fi
  if grep -E 'warning:' "$1/build.log" >&2; then
    echo "netlab: test: $2 build has compiler warnings (fix them; full log: $1/build.log)" >&2
    return 1
  fi
  echo "== $2: tests" >&2
  ctest --test-dir "$1" --output-on-failure -j"$jobs" --timeout 300 "${filter[@]}"
}

"$here/scripts/deps.sh"
start=$(date +%s)
# Line tables only (-g1): enough for sanitizer and crash backtraces, and the websocketpp-heavy
# translation units compile markedly faster than with full debug info.
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" >/dev/null
run_suite "$here/build" "release"

if ((sanitize)); then
  reports="$here/build-asan/sanitizer-reports"
  cmake -S "$here" -B "$here/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1" -DNETLAB_SANITIZE=ON >/dev/null
  rm -rf "$reports" && mkdir -p "$reports"
  # Reports go to files, so a report from any process (server, client, unit test) fails the run
  # even when that process's exit code is not what a test looks at.
  export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1"
  export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$here/tests/lsan.supp"
  run_suite "$here/build-asan" "asan+ubsan"
  if compgen -G "$reports/*" >/dev/null; then
    echo "netlab: test: sanitizer reports found:" >&2
    head -n 60 "$reports"/* >&2
    exit 1
  fi
fi
echo "all tests passed in $(( $(date +%s) - start ))s" >&2
