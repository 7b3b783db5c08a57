#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite (unit + CLI + end to end),
# then builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs the whole suite once
# more, failing on any sanitizer report. With clang-14 (scripts/deps.sh installs it), two more
# stages: every libFuzzer target (tests/fuzz) runs for a bounded time on its seed corpus, and a
# ThreadSanitizer build runs the end-to-end tests whose processes use several threads. A crash, a
# leak, a failed invariant or a sanitizer report in any stage fails the run.
# Usage: scripts/test.sh [--no-sanitize] [ctest -R regex]
#   --no-sanitize    release build and suite only
#   regex            only the matching tests (release, ASan, TSan suites); no fuzzing
#   NETLAB_FUZZ_SECONDS=N   time per fuzz target (default 20)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sanitize=1
if [[ "${1:-}" == "--no-sanitize" ]]; then sanitize=0; shift; fi
filter=()
[[ $# -gt 0 ]] && filter=(-R "$1")
jobs=$(nproc)
fuzz_seconds=${NETLAB_FUZZ_SECONDS:-20}
# A warm cache helps a developer's machine; a clean CI machine has none and loses nothing.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# ccache caches units built with a precompiled header (cmake/pch.cmake) only when told these two
# differences do not matter (without it, it compiles them uncached).
export CCACHE_SLOPPINESS=pch_defines,time_macros
timings=()

build() {  # $1 = build dir, $2 = label, then the targets (none: all)
  local dir=$1 label=$2 targets=()
  shift 2
  (($#)) && targets=(--target "$@")
  echo "== $label: build" >&2
  if ! cmake --build "$dir" -j"$jobs" "${targets[@]}" >"$dir/build.log" 2>&1; then
    grep -E -A3 'error' "$dir/build.log" | head -n 60 >&2
    echo "netlab: test: $label build failed (full log: $dir/build.log)" >&2
    return 1
  fi
  if grep -E 'warning:' "$dir/build.log" >&2; then
    echo "netlab: test: $label build has compiler warnings (fix them; full log: $dir/build.log)" >&2
    return 1
  fi
}

run_suite() {  # $1 = build dir, $2 = label
  build "$1" "$2"
  echo "== $2: tests" >&2
  ctest --test-dir "$1" --output-on-failure -j"$jobs" --timeout 300 "${filter[@]}"
}

check_reports() {  # $1 = reports dir, $2 = label
  if compgen -G "$1/*" >/dev/null; then
    echo "netlab: test: $2 reports found:" >&2
    head -n 80 "$1"/* >&2
    return 1
  fi
}

timed() {  # $1 = label, then the command; records how long each stage took
  local t0=$SECONDS label=$1
  shift
  "$@"
  timings+=("$label $((SECONDS - t0))s")
}

# Each libFuzzer target runs for fuzz_seconds on a scratch copy of tests/fuzz/corpus/<target>/
# (what it learns is thrown away: the committed corpus stays small and hand-made), two at a time.
run_fuzzers() {
  local dir="$here/build-fuzz"
  CC=clang-14 CXX=clang++-14 cmake -S "$here" -B "$dir" -DNETLAB_FUZZ=ON -DNETLAB_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="" "${launcher[@]}" >/dev/null
  build "$dir" "fuzz" netlab_fuzzers
  echo "== fuzz: ${fuzz_seconds}s per target" >&2
  local run="$dir/fuzz-run" failed=0 t
  rm -rf "$run"
  for corpus in "$here"/tests/fuzz/corpus/*/; do
    t=$(basename "$corpus")
    mkdir -p "$run/$t/corpus" "$run/$t/crashes"
    cp "$corpus"* "$run/$t/corpus/"
    while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
    # -timeout: one input running 10 s is a hang; -rss_limit_mb: a runaway allocation is a crash.
    # Leaks are reported by libFuzzer itself (-detect_leaks=1 is its default).
    (cd "$run/$t" && rc=0 && UBSAN_OPTIONS=print_stacktrace=1 "$dir/tests/fuzz/$t" -max_total_time="$fuzz_seconds" \
       -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$run/$t/crashes/" -print_final_stats=1 corpus \
       >"$run/$t/log" 2>&1 || rc=$?; echo "$rc" >"$run/$t/rc") &
  done
  wait
  for corpus in "$here"/tests/fuzz/corpus/*/; do
    t=$(basename "$corpus")
    if [[ "$(cat "$run/$t/rc")" != 0 ]] || compgen -G "$run/$t/crashes/*" >/dev/null; then
      echo "netlab: test: fuzz target $t failed (log: $run/$t/log):" >&2
      grep -E -B2 -A30 'ERROR|invariant failed' "$run/$t/log" | head -n 60 >&2
      echo "reproduce: $dir/tests/fuzz/$t $run/$t/crashes/<file>, then make it a case in tests/unit/test_fuzz_findings.cpp" >&2
      failed=1
    else
      echo "   $t: $(grep -o 'number_of_executed_units: *[0-9]*' "$run/$t/log" | grep -o '[0-9]*$') inputs" >&2
    fi
  done
  return "$failed"
}

# ThreadSanitizer: the netlab binary only (the unit tests are single-threaded) and the e2e tests
# labelled "tsan" in tests/CMakeLists.txt (servers with --threads >= 2, the load clients).
run_tsan() {
  local dir="$here/build-tsan"
  CC=clang-14 CXX=clang++-14 cmake -S "$here" -B "$dir" -DNETLAB_TSAN=ON \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="" "${launcher[@]}" >/dev/null
  build "$dir" "tsan" netlab
  # clang-14's TSan cannot map its shadow memory when the kernel randomizes mmap with 32 bits
  # (vm.mmap_rnd_bits, newer kernels): "unexpected memory mapping". Without ASLR it can.
  local prefix=()
  if ! env -u TSAN_OPTIONS "$dir/netlab" --version >/dev/null 2>&1; then
    prefix=(setarch "$(uname -m)" -R)
    "${prefix[@]}" "$dir/netlab" --version >/dev/null
  fi
  local reports="$dir/tsan-reports"
  rm -rf "$reports" && mkdir -p "$reports"
  echo "== tsan: tests" >&2
  # Reports go to files, so a race in any process fails the run whatever its exit code.
  TSAN_OPTIONS="log_path=$reports/tsan:second_deadlock_stack=1:suppressions=$here/tests/tsan.supp" \
    "${prefix[@]}" ctest --test-dir "$dir" -L tsan --output-on-failure -j"$jobs" --timeout 300 "${filter[@]}"
  check_reports "$reports" "ThreadSanitizer"
}

"$here/scripts/deps.sh"
start=$(date +%s)
# Line tables only (-g1): enough for sanitizer and crash backtraces, and the websocketpp-heavy
# translation units compile markedly faster than with full debug info.
cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  "${launcher[@]}" >/dev/null
timed release run_suite "$here/build" "release"

if ((sanitize)); then
  reports="$here/build-asan/sanitizer-reports"
  cmake -S "$here" -B "$here/build-asan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1" -DNETLAB_SANITIZE=ON \
    "${launcher[@]}" >/dev/null
  rm -rf "$reports" && mkdir -p "$reports"
  # Reports go to files, so a report from any process (server, client, unit test) fails the run
  # even when that process's exit code is not what a test looks at.
  export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1"
  export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$here/tests/lsan.supp"
  timed asan+ubsan run_suite "$here/build-asan" "asan+ubsan"
  check_reports "$reports" "sanitizer"
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

  if command -v clang++-14 >/dev/null; then
    if ((${#filter[@]} == 0)); then timed fuzz run_fuzzers; fi
    timed tsan run_tsan
  else
    echo "netlab: test: clang++-14 not found: no fuzzing, no ThreadSanitizer run (scripts/deps.sh installs it)" >&2
  fi
fi
echo "stages: ${timings[*]}" >&2
echo "all tests passed in $(( $(date +%s) - start ))s" >&2
