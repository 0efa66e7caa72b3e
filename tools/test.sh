#!/usr/bin/env bash
# The README's test command: installs what the build needs, configures, builds and runs the
# whole test suite with ctest. Safe to run twice (everything is incremental).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash tools/install_deps.sh
build=${RECDISTILL_TEST_BUILD_DIR:-build-test}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRECDISTILL_BUILD_TESTS=ON \
      -DRECDISTILL_BUILD_APPS=ON ${RECDISTILL_CMAKE_ARGS:-}
cmake --build "$build" -j 2
# With a CUDA toolkit on the machine, the CUDA test binary must exist (it skips at run time
# when no GPU is present, and says so).
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  if [ ! -x "$build/tests/recdistill_cuda_tests" ]; then
    echo "error: a CUDA toolkit is installed but $build/tests/recdistill_cuda_tests was not built" >&2
    exit 1
  fi
fi
ctest --test-dir "$build" --output-on-failure -j 2
# Bounded fuzzing of every parser under ASan + UBSan (docs/fuzzing.md): the stage, build included,
# within 8 minutes (7 of fuzzing shared among the targets, at most 60 s each), execution counts
# printed; any finding, or a target below its execution floor (tests/fuzz/floors.txt), fails the run.
if [ "${RECDISTILL_SKIP_FUZZ:-0}" != 1 ]; then
  if [ -n "${RECDISTILL_FUZZ_SECONDS:-}" ]; then export FUZZ_SECONDS=$RECDISTILL_FUZZ_SECONDS; fi
  bash tools/fuzz.sh
fi
