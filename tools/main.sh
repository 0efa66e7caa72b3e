#!/usr/bin/env bash
# The README's main job: a short version of the profile-distillation comparison on
# MovieLens-100K (docs/RESULTS.md has the full one). It installs what it needs, fetches
# MovieLens-100K (checksummed, cached under data/), builds the app and its plugins, exports the
# seed's temporal split and makes metadata profiles for it (tools/metadata_profiles.sh: pinned
# encoder, not an LLM), then trains baseline SASRec, distilled SASRecLLM and the shuffled-profile
# control on one seed (experiments/plans/seed_sasrec_temporal.yaml) and prints the test
# table and the paired tests against the baseline; tables in a new folder under runs/. Extra
# arguments go to `recdistill experiment` (e.g. --seeds 2020,2021,2022,2023,2024 for the full
# 5 seeds). Safe to run twice.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash tools/install_deps.sh
bash tools/fetch_ml100k.sh
build=${RECDISTILL_BUILD_DIR:-build-release}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRECDISTILL_BUILD_TESTS=OFF \
      -DRECDISTILL_CUDA=OFF >/dev/null
cmake --build "$build" -j 2
RECDISTILL_APP="$build/apps/recdistill" bash tools/metadata_profiles.sh temporal
# The defaults below give way to the caller's own --seeds or --output.
seeds=(--seeds 2020)
output=(--output runs/main)
for arg in "$@"; do
  case "$arg" in
    --seeds|--seeds=*) seeds=() ;;
    --output|--output=*|-o) output=() ;;
  esac
done
"$build/apps/recdistill" experiment --plan experiments/plans/seed_sasrec_temporal.yaml "${seeds[@]}" "${output[@]}" "$@"
