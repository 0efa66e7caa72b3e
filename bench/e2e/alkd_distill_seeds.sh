#!/usr/bin/env bash
# The stages after pre-training of active distillation (predict, oracle, select, distill, report)
# on the pre-trained folders of bench/e2e/alkd_pretrain_seeds.sh, for each backbone and seed;
# then bench/e2e/summarise_alkd_distill.py tabulates them (docs/RESULTS.md, "Active
# distillation"). Extra arguments after the seeds go to `recdistill alkd` (e.g. --set compat=...).
# upstream_compat: `LOG=distill-compat ... -- --set compat=upstream_compat` (Atten-Mixer adds
# --set alkd.distill_bce_negatives=1); its outputs go to each folder's upstream_compat/.
# Usage: [OUT=bench/results/alkd_pretrain] [LOG=distill] bench/e2e/alkd_distill_seeds.sh [BUILD_DIR] BACKBONE... -- SEED... [-- ALKD ARGS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-release}; shift || true
backbones=(); seeds=(); extra=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do backbones+=("$1"); shift; done
[ $# -gt 0 ] && shift
while [ $# -gt 0 ] && [ "$1" != "--" ]; do seeds+=("$1"); shift; done
[ $# -gt 0 ] && shift
extra=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(2024 2025 2026 2027 2028)
out=${OUT:-bench/results/alkd_pretrain}
for b in "${backbones[@]}"; do
  for s in "${seeds[@]}"; do
    folder=$(ls -d "$out/$b"/alkd-*-seed$s 2>/dev/null | tail -1 || true)
    if [ -z "$folder" ] || [ ! -f "$folder/student.done" ]; then echo "$b seed $s: not pre-trained, skipped"; continue; fi
    "$build/apps/recdistill" alkd --config "experiments/alkd/ml_$b.yaml" --set seed=$s ${extra[@]+"${extra[@]}"} \
      --stages predict,oracle,select,distill,report --resume "$folder" > "$folder/${LOG:-distill}.log" 2>&1
    echo "$b seed $s done"
  done
done
