#!/usr/bin/env bash
# Teacher and student pre-training of active distillation (`recdistill alkd --stages pretrain`)
# for each backbone config and seed; then bench/e2e/summarise_alkd.py tabulates the test
# numbers (docs/RESULTS.md, "Session models: teacher and student").
# Usage: [OUT=bench/results/alkd_pretrain] bench/e2e/alkd_pretrain_seeds.sh [BUILD_DIR] BACKBONE... -- SEED... [-- ARGS...]
#   backbones: stamp fpmc attenmixer (experiments/alkd/ml_<backbone>.yaml); seeds default 2024..2028;
#   ARGS go to recdistill alkd (e.g. --set compat=upstream_compat, whose model switches need their
#   own pre-training: give it its own OUT).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-release}; shift || true
backbones=(); seeds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do backbones+=("$1"); shift; done
[ $# -gt 0 ] && shift
while [ $# -gt 0 ] && [ "$1" != "--" ]; do seeds+=("$1"); shift; done
[ $# -gt 0 ] && shift
extra=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(2024 2025 2026 2027 2028)
out=${OUT:-bench/results/alkd_pretrain}
for b in "${backbones[@]}"; do
  mkdir -p "$out/$b"
  for s in "${seeds[@]}"; do
    if ls -d "$out/$b"/alkd-*-seed$s >/dev/null 2>&1 && [ -f "$(ls -d "$out/$b"/alkd-*-seed$s | tail -1)/student.done" ]; then
      echo "$b seed $s: done"; continue
    fi
    "$build/apps/recdistill" alkd --config "experiments/alkd/ml_$b.yaml" --set seed=$s --stages pretrain \
      --output "$out/$b" ${extra[@]+"${extra[@]}"} > "$out/$b/seed$s.log" 2>&1
    echo "$b seed $s done"
  done
done
