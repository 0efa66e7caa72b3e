#!/usr/bin/env bash
# Data-parallel scaling on one machine (docs/BENCHMARKS.md §6, docs/distributed.md): the main
# job's SASRec on ml-100k trained to early stopping as 1 rank x 1 thread, 1 rank x 2 threads and
# 2 ranks x 1 thread, plus the all-reduce's cost for the model's gradient. Run it on an idle
# machine. Usage: bench/dist/run_scaling.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-release}
out=${2:-bench/results/dist_scaling}
app=$build/apps/recdistill
mkdir -p "$out"
source bench/dist/scaling_lib.sh
mpicxx -O2 -std=c++20 -Iinclude bench/dist/allreduce_bench.cpp apps/mpi_world.cpp -o "$out/allreduce_bench"
for P in 211008 1000000 10000000; do
  "${mpirun[@]}" -np 2 "$out/allreduce_bench" $P 200 | tee -a "$out/allreduce.txt"
done
run() {  # NAME RANKS THREADS
  local name=$1
  train_as "$@" --config experiments/sasrec_ml100k.yaml
  python3 - "$out/$name.json" "$name" <<'PY' | tee -a "$out/summary.txt"
import json, sys
r = json.load(open(sys.argv[1]))
e = r["epochs_run"]
print(f"{sys.argv[2]:<14} {r['train_seconds'] / e:6.3f} s/epoch  best epoch {r['best_epoch']:3d} of {e:3d}  "
      f"{r['train_seconds_to_best']:6.1f} s to best  test NDCG@10 {r['test']['NDCG@10']:.4f}  HR@10 {r['test']['HR@10']:.4f}")
PY
}
run 1rank_1thread 1 1
run 1rank_2threads 1 2
run 2ranks_1thread 2 1
