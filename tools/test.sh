#!/usr/bin/env bash
# The README's test command: installs what the build needs, then three stages, each failing the
# run on any failure:
#  1. the release build (app, plugins, command-line and plugin tests, the CUDA parity binary) and
#     its ctest;
#  2. the CPU suite's GoogleTest binaries (unit, gradient, golden, end-to-end) built once, with
#     ASan + UBSan, and run (tools/sanitize.sh);
#  3. bounded fuzzing of every parser (tools/fuzz.sh).
# Safe to run twice (everything is incremental). RECDISTILL_BUILD_CPU_TESTS=ON also builds and
# runs the CPU binaries in the release build; RECDISTILL_SKIP_SANITIZE=1 / RECDISTILL_SKIP_FUZZ=1
# skip a stage.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# Each stage's wall time, printed at the end (docs/BENCHMARKS.md §5 keeps a table of them).
times=""
t0=$(date +%s)
stage_done() {
  local now
  now=$(date +%s)
  times+="$(printf '  %-34s %5d s' "$1" $((now - t0)))"$'\n'
  t0=$now
}
started=$t0
bash tools/install_deps.sh
stage_done "install check"
build=${RECDISTILL_TEST_BUILD_DIR:-build-test}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRECDISTILL_BUILD_TESTS=ON \
      -DRECDISTILL_BUILD_APPS=ON -DRECDISTILL_BUILD_CPU_TESTS=${RECDISTILL_BUILD_CPU_TESTS:-OFF} \
      ${RECDISTILL_CMAKE_ARGS:-}
cmake --build "$build" -j 2
stage_done "configure + build (release)"
# With a CUDA toolkit on the machine, the CUDA test binary must exist (it skips at run time
# when no GPU is present, and says so).
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  if [ ! -x "$build/tests/recdistill_cuda_tests" ]; then
    echo "error: a CUDA toolkit is installed but $build/tests/recdistill_cuda_tests was not built" >&2
    exit 1
  fi
fi
ctest --test-dir "$build" --output-on-failure -j 2
stage_done "ctest (release)"
# The CPU suite under the sanitisers (it is not built above, so it runs once).
if [ "${RECDISTILL_SKIP_SANITIZE:-0}" != 1 ]; then
  bash tools/sanitize.sh
  stage_done "sanitiser build + CPU suite"
fi
# Bounded fuzzing of every parser under ASan + UBSan (docs/fuzzing.md): the stage, build included,
# within 4 minutes (at most 200 s of fuzzing, one target per core at a time, at most 60 s
# each), execution counts printed; any finding, or a target below its execution floor
# (tests/fuzz/floors.txt), fails the run.
if [ "${RECDISTILL_SKIP_FUZZ:-0}" != 1 ]; then
  if [ -n "${RECDISTILL_FUZZ_SECONDS:-}" ]; then export FUZZ_SECONDS=$RECDISTILL_FUZZ_SECONDS; fi
  FUZZ_STAGE_SECONDS=${FUZZ_STAGE_SECONDS:-240} FUZZ_TOTAL_SECONDS=${FUZZ_TOTAL_SECONDS:-200} bash tools/fuzz.sh
  stage_done "fuzz (build + targets)"
fi
printf 'test.sh: every stage passed; wall time per stage:\n%s  %-34s %5d s\n' "$times" "total" \
  $(( $(date +%s) - started ))
