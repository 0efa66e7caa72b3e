#!/usr/bin/env bash
# Run on the GPU machine from the repository root, with .gpu/ (bench/gpu/make_bundle.sh) and
# data/ml-100k carried. Writes as it goes to $OUT (the device tool's output folder), so a run
# cut short still returns what it did. In order of importance:
#   1. parity: every CUDA op against its host run, SASRec training against the CPU's;
#   2. SASRec on ml-100k (the main job's config), a few epochs on cuda, on cuda with TF32, then
#      on cpu, for seconds per epoch and the validation metric side by side. The cpu run is the
#      portable build's (no -march=native: 2.5x slower per epoch than the native build on the development VM since
#      the subnormal fix of 2026-12-06, about 8x before; docs/BENCHMARKS.md §2),
#      a reference for the metric, not for CPU speed (BENCHMARKS §2 has the native numbers).
# At most 240 + 140 + 80 + 90 s, inside one 600 s device call. The machine supplies the CUDA runtime
# and cuBLAS (too large to carry); the bundle was built with CUDA 13.0's, so it needs 13.x.
# RECDISTILL_CUDA_SYNC=1 (set below for the parity run) makes a kernel fault name its kernel.
set -u
OUT=${OUT:-bench/results/gpu}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/.gpu/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
log() { echo "$(date -u +%H:%M:%S) $*" | tee -a "$OUT/summary.txt"; }
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
log "device: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1)"
RECDISTILL_CUDA_SYNC=1 timeout 240 .gpu/tests/recdistill_cuda_tests --gtest_output=json:"$OUT/parity.json" > "$OUT/parity.log" 2>&1
log "parity rc=$? ($(grep -c '^\[       OK \]' "$OUT/parity.log") OK, $(grep -c '^\[  SKIPPED \]' "$OUT/parity.log") skipped, $(grep -c '^\[  FAILED  \]' "$OUT/parity.log") failed lines)"
EPOCHS=${EPOCHS:-5}
# name, seconds allowed, overrides: true fp32 on the GPU, TF32 (runtime.tf32), the portable CPU.
while read -r name secs sets; do
  args=()
  for kv in $sets; do args+=(--set "$kv"); done
  timeout "$secs" .gpu/apps/recdistill train --config experiments/sasrec_ml100k.yaml "${args[@]}" \
    --set training.epochs="$EPOCHS" --output "$OUT/runs_$name" < /dev/null > "$OUT/train_$name.log" 2>&1
  log "train $name rc=$?: $(grep -E '^epoch ' "$OUT/train_$name.log" | tail -1)"
done <<'RUNS'
cuda 140 runtime.backend=cuda
cuda_tf32 80 runtime.backend=cuda runtime.tf32=true
cpu 90 runtime.backend=cpu
RUNS
