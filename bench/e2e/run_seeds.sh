#!/usr/bin/env bash
# Runs the main job's config to convergence for several seeds and summarises test NDCG@10,
# HR@10, the selected epoch and the training time to it (mean and std over seeds).
# Usage: bench/e2e/run_seeds.sh [BUILD_DIR] [SEEDS...]   (default: build-release, 2020..2024)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-release}; shift || true
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(2020 2021 2022 2023 2024)
out=bench/results/ours_seeds
mkdir -p "$out"
for s in "${seeds[@]}"; do
  /usr/bin/time -f "%M" -o "$out/seed$s.maxrss_kb" \
    "$build/apps/recdistill" train --config experiments/sasrec_ml100k.yaml --set seed=$s \
    --output "$out/runs" > "$out/seed$s.log" 2>&1
  cp "$(ls -d "$out"/runs/run-*-seed$s | tail -1)/results.json" "$out/seed$s.json"
  echo "seed $s done: $(grep -o '"NDCG@10": [0-9.]*' "$out/seed$s.json" | tail -1)"
done
python3 bench/e2e/summarise_seeds.py "$out" "${seeds[@]}"
