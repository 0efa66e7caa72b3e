#!/usr/bin/env bash
# The README's main job: installs what it needs, fetches MovieLens-100K (checksummed, cached
# under data/), builds the app and trains + evaluates SASRec with experiments/sasrec_ml100k.yaml.
# Extra arguments go to `recdistill train` (e.g. --set training.epochs=5). Safe to run twice:
# each run writes a new folder under runs/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash tools/install_deps.sh
bash tools/fetch_ml100k.sh
build=${RECDISTILL_BUILD_DIR:-build-release}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRECDISTILL_BUILD_TESTS=OFF \
      -DRECDISTILL_CUDA=OFF >/dev/null
cmake --build "$build" -j 2 --target recdistill_app
"$build/apps/recdistill" train --config experiments/sasrec_ml100k.yaml "$@"
