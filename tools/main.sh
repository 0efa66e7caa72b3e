#!/usr/bin/env bash
# The README's main job: installs what it needs, fetches MovieLens-100K (checksummed, cached
# under data/), builds the app and its plugins, and runs a 3-seed experiment of SASRec with
# experiments/sasrec_ml100k.yaml: a progress bar on a terminal, one line per run otherwise,
# a mean ± std test table, and tables + plots in a new folder under runs/. Extra arguments go
# to `recdistill experiment` (e.g. --set training.epochs=5, --seeds 2020). Safe to run twice.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash tools/install_deps.sh
bash tools/fetch_ml100k.sh
build=${RECDISTILL_BUILD_DIR:-build-release}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRECDISTILL_BUILD_TESTS=OFF \
      -DRECDISTILL_CUDA=OFF >/dev/null
cmake --build "$build" -j 2
"$build/apps/recdistill" experiment --config experiments/sasrec_ml100k.yaml --seeds 2020,2021,2022 "$@"
