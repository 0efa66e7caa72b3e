#!/usr/bin/env bash
# The whole ML reproduction of active distillation (docs/RESULTS.md, "Active LLM distillation"):
# for each backbone and seed, pre-training then every later stage with the `reference` preset
# (bench/e2e/alkd_pretrain_seeds.sh, bench/e2e/alkd_distill_seeds.sh), JOBS (backbone, seed)
# pairs at a time, one thread each; the wall time goes to OUT/reproduce_times.txt
# (docs/BENCHMARKS.md §3d). COMPAT=1 then runs the `upstream_compat` preset, pre-training
# included (its model switches, spec §9 Q1-Q5, change the pre-trained models), into OUT_COMPAT
# (default OUT_upstream_compat), timed on its own line.
# PRESETS="upstream_compat" runs that preset alone (default: reference, then upstream_compat when
# COMPAT=1).
# Usage: [OUT=bench/results/alkd_pretrain] [OUT_COMPAT=...] [JOBS=2] [COMPAT=1 | PRESETS=...] bench/e2e/alkd_reproduce.sh [BUILD_DIR] [SEED...]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-release}; shift || true
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(2024 2025 2026 2027 2028)
out=${OUT:-bench/results/alkd_pretrain}
jobs=${JOBS:-2}
mkdir -p "$out"
export OUT="$out"
# The slowest backbone first, so the streams end together.
pairs=()
for b in attenmixer stamp fpmc; do for s in "${seeds[@]}"; do pairs+=("$b $s"); done; done

run_phase() {  # NAME COMMAND-TEMPLATE (with {b} and {s})
  local name=$1 template=$2 start end
  start=$(date +%s)
  printf '%s\n' "${pairs[@]}" | xargs -P "$jobs" -L 1 bash -c "b=\$0; s=\$1; $template"
  end=$(date +%s)
  echo "$name: ${#pairs[@]} (backbone, seed) runs, $jobs at a time, $((end - start)) s wall, $(date -u +%FT%TZ), $(nproc) cores" \
    | tee -a "$out/reproduce_times.txt"
}

if [ "${COMPAT:-0}" = 1 ]; then presets=${PRESETS:-"reference upstream_compat"}; else presets=${PRESETS:-reference}; fi
[[ " $presets " == *" reference "* ]] && run_phase reference "bash bench/e2e/alkd_pretrain_seeds.sh '$build' \$b -- \$s && bash bench/e2e/alkd_distill_seeds.sh '$build' \$b -- \$s"
if [[ " $presets " == *" upstream_compat "* ]]; then
  cout=${OUT_COMPAT:-${out}_upstream_compat}
  run_phase upstream_compat "extra=(--set compat=upstream_compat); [ \$b = attenmixer ] && extra+=(--set alkd.distill_bce_negatives=1);
    OUT='$cout' bash bench/e2e/alkd_pretrain_seeds.sh '$build' \$b -- \$s -- \"\${extra[@]}\" &&
    OUT='$cout' LOG=distill-compat bash bench/e2e/alkd_distill_seeds.sh '$build' \$b -- \$s -- \"\${extra[@]}\""
fi
