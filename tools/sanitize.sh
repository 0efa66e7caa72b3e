#!/usr/bin/env bash
# The CPU suite's GoogleTest binaries (unit, gradient, golden and end-to-end tests: ctest label
# cpu_unit) built with AddressSanitizer + UndefinedBehaviorSanitizer (clang, -O1; CUDA, the app,
# the plugins and the benchmarks off) in build-asan, and run once; any sanitiser report fails its
# test (UBSan does not recover; ASan halts on the first error, leaks included). tools/test.sh
# runs it instead of building those binaries in its release build (docs/fuzzing.md, "Sanitisers
# on the whole suite").
# Environment: SANITIZE_BUILD_DIR (build-asan), SANITIZE_CXX (clang++-14, which compiles this code
# with the sanitisers in about 60% of g++'s time), SANITIZE_JOBS (2), SANITIZE_TESTS (a ctest -R
# regex within the label; default all).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SANITIZE_BUILD_DIR:-$root/build-asan}
cxx=${SANITIZE_CXX:-clang++-14}
jobs=${SANITIZE_JOBS:-2}
# -O1 keeps the instrumented tests fast enough to run in CI; frame pointers and line tables give
# readable reports.
flags="-O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
start=$(date +%s)
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DRECDISTILL_BUILD_TESTS=ON -DRECDISTILL_BUILD_CPU_TESTS=ON -DRECDISTILL_BUILD_APPS=OFF -DRECDISTILL_BUILD_PLUGINS=OFF \
  -DRECDISTILL_BUILD_BENCH=OFF -DRECDISTILL_BUILD_FUZZ=OFF -DRECDISTILL_CUDA=OFF > "$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "$jobs"
built=$(date +%s)
# halt_on_error: the first report fails the test; strict_string_checks and
# detect_stack_use_after_return catch more; a report prints its stack.
export ASAN_OPTIONS="halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
ctest --test-dir "$build" --output-on-failure --no-tests=error -j "$jobs" -L cpu_unit ${SANITIZE_TESTS:+-R "$SANITIZE_TESTS"}
echo "sanitize.sh: build $((built - start)) s, tests $(( $(date +%s) - built )) s"
