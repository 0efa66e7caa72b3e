#!/usr/bin/env bash
# Data-parallel speed of a session model with in-batch negatives (docs/BENCHMARKS.md §3e):
# ALKDRec's STAMP on the ML sessions (experiments/alkd/ml_stamp.yaml: batch 1024, in-batch BPR,
# 20 steps an "epoch"), the teacher's d = 100, 30 epochs without validation, as 1 rank x 1
# thread, 1 rank x 2 threads and 2 ranks x 1 thread. Run it on an idle machine; the run folders
# (checkpoints) are removed, the logs and results kept.
# Usage: run_session_scaling.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-release}
out=${2:-bench/results/dist_scaling/stamp_ml}
app=$build/apps/recdistill
mkdir -p "$out"
source bench/dist/scaling_lib.sh
run() {  # NAME RANKS THREADS
  local name=$1
  train_as "$@" --config experiments/alkd/ml_stamp.yaml --set model.hidden_units=100 --set training.epochs=30 \
      --set training.eval_every=1000
  rm -rf "$out/runs_$name"
  python3 - "$out/$name.json" "$name" <<'PY' | tee -a "$out/summary.txt"
import json, sys
r = json.load(open(sys.argv[1]))
e = r["epochs_run"]
print(f"{sys.argv[2]:<14} {r['train_seconds'] / e:6.3f} s per 20 steps of 1024 rows ({e} epochs)  "
      f"test HR@20 {r['test']['HR@20']:.4f}")
PY
}
run 1rank_1thread 1 1
run 1rank_2threads 1 2
run 2ranks_1thread 2 1
