#!/usr/bin/env bash
# Runs a config to convergence for several seeds and summarises test NDCG@10, HR@10, the
# selected epoch and the training time to it (mean and std over seeds).
# Usage: [CONFIG=...] [OUT=...] [SETS="key=value ..."] bench/e2e/run_seeds.sh [BUILD_DIR] [SEEDS...]
#   defaults: CONFIG experiments/sasrec_ml100k.yaml (the main job), OUT bench/results/ours_seeds,
#   BUILD_DIR build-release, seeds 2020..2024; SETS are passed as --set overrides.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-release}; shift || true
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(2020 2021 2022 2023 2024)
config=${CONFIG:-experiments/sasrec_ml100k.yaml}
out=${OUT:-bench/results/ours_seeds}
sets=()
for kv in ${SETS:-}; do sets+=(--set "$kv"); done
mkdir -p "$out"
for s in "${seeds[@]}"; do
  /usr/bin/time -f "%M" -o "$out/seed$s.maxrss_kb" \
    "$build/apps/recdistill" train --config "$config" --set seed=$s "${sets[@]}" \
    --output "$out/runs" > "$out/seed$s.log" 2>&1
  cp "$(ls -d "$out"/runs/run-*-seed$s | tail -1)/results.json" "$out/seed$s.json"
  echo "seed $s done: $(grep -o '"NDCG@10": [0-9.]*' "$out/seed$s.json" | tail -1)"
done
python3 bench/e2e/summarise_seeds.py "$out" "${seeds[@]}"
